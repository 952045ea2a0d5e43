import AuditBase
import Foundation
import TestSupport
import Testing

@testable import AuditEntries
@testable import AuditIndex
@testable import SegmentStore

/// `OrgIndex.seal` takes each org's hits of the segment as one run of its seq-ordered list
/// (no copies); the list must stay ordered whatever order hits arrive in, and a seal must
/// take exactly the segment's range, leave the rest, and answer queries across both.
@Suite struct OrgIndexSealTests {
    func hit(_ seq: UInt64) -> IndexHit {
        IndexHit(
            seq: seq, orgSeq: seq,
            fields: IndexFields(
                time: 1_700_000_000_000 + Int64(seq), category: .authentication, outcome: .success,
                action: "auth.login.succeeded.\(seq % 3)", actor: "human:user_with_a_long_identifier_\(seq % 5)"))
    }

    @Test func aSealTakesExactlyItsSegmentsHitsEvenWhenTheyArriveOutOfOrder() throws {
        let dir = temporaryDirectory("orgindex-seal")
        let idx = try OrgIndex(directory: dir, readOnly: false)
        // Segment 0 is seq 0..<10, segment 1 is 10..<20; org_b has hits on both sides, added
        // out of order, and one before the segment's range that a seal must not take.
        idx.add([("org_a", hit(1)), ("org_b", hit(4)), ("org_a", hit(3))])
        idx.add([("org_b", hit(12)), ("org_b", hit(2)), ("org_a", hit(9)), ("org_b", hit(8))])
        idx.add([("org_a", hit(15)), ("org_a", hit(10)), ("org_b", hit(19)), ("org_b", hit(0))])

        let last = try idx.seal(SegmentInfo(segment: 0, state: .sealed, path: "", firstSeq: 0, endSeq: 10))
        #expect(last["org_a"]?.seq == 9)
        #expect(last["org_b"]?.seq == 8)
        idx.sealCompleted(0)

        func all(_ org: String) throws -> [UInt64] {
            try idx.query(org: org, filter: QueryFilter(), newestFirst: false, limit: 100, cursor: nil).map(\.seq)
        }
        #expect(try all("org_a") == [1, 3, 9, 10, 15])
        #expect(try all("org_b") == [0, 2, 4, 8, 12, 19])
        let newest = try idx.query(org: "org_b", filter: QueryFilter(), newestFirst: true, limit: 100, cursor: nil)
        #expect(newest.map(\.seq) == [19, 12, 8, 4, 2, 0])
        #expect(newest.last?.fields.actor == "human:user_with_a_long_identifier_0")

        // The second segment's seal takes the rest; nothing is left unsealed or counted twice.
        try idx.seal(SegmentInfo(segment: 1, state: .sealed, path: "", firstSeq: 10, endSeq: 20))
        idx.sealCompleted(1)
        #expect(try all("org_a") == [1, 3, 9, 10, 15])
        #expect(try all("org_b") == [0, 2, 4, 8, 12, 19])
        let file = try SealedIndex(path: dir + "/" + OrgIndex.fileName(1))
        #expect(try file.hits(org: "org_b").map(\.seq) == [12, 19])
        #expect(
            try file.hits(org: "org_a").map(\.fields.action) == ["auth.login.succeeded.1", "auth.login.succeeded.0"])
    }
}
