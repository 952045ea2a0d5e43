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

    /// A seal moves the segment's hits aside before it writes the index file; one that fails
    /// there (the file's temporary name is taken, here by a directory) leaves every hit
    /// answered exactly once, with hits that arrive in the meantime, and its retry writes the
    /// same rows. Then the aside hits are let go of, and queries read the file.
    @Test func hitsMovedAsideByAFailedSealAreStillAnsweredOnceAndTheRetryWritesThem() throws {
        let dir = temporaryDirectory("orgindex-seal-retry")
        let idx = try OrgIndex(directory: dir, readOnly: false)
        idx.add([("org_a", hit(0)), ("org_b", hit(1)), ("org_a", hit(2)), ("org_a", hit(11))])
        func all(_ org: String, newestFirst: Bool = false) throws -> [UInt64] {
            try idx.query(org: org, filter: QueryFilter(), newestFirst: newestFirst, limit: 100, cursor: nil).map(\.seq)
        }
        let blocker = dir + "/" + OrgIndex.fileName(0) + ".tmp"
        try FileManager.default.createDirectory(atPath: blocker, withIntermediateDirectories: true)
        let segment0 = SegmentInfo(segment: 0, state: .sealed, path: "", firstSeq: 0, endSeq: 10)
        #expect(throws: (any Error).self) { try idx.seal(segment0) }
        idx.add([("org_a", hit(12)), ("org_b", hit(13))])
        #expect(try all("org_a") == [0, 2, 11, 12])
        #expect(try all("org_a", newestFirst: true) == [12, 11, 2, 0])
        #expect(try all("org_b") == [1, 13])
        #expect(idx.holds(org: "org_b"))

        try FileManager.default.removeItem(atPath: blocker)
        let last = try idx.seal(segment0)
        #expect(last["org_a"]?.seq == 2 && last["org_b"]?.seq == 1)
        #expect(try all("org_a") == [0, 2, 11, 12])
        idx.sealCompleted(0)
        #expect(try all("org_a") == [0, 2, 11, 12])
        #expect(try all("org_b", newestFirst: true) == [13, 1])
        let file = try SealedIndex(path: dir + "/" + OrgIndex.fileName(0))
        #expect(try file.hits(org: "org_a").map(\.seq) == [0, 2])
        #expect(try file.hits(org: "org_b").map(\.seq) == [1])
    }

    /// `split` takes a range out of an org's list: the list's own storage when the range starts
    /// it (the seal's case), a copy otherwise; the rest keeps its order.
    @Test func splitTakesTheRangeAndLeavesTheRest() throws {
        var hits: [IndexHit]? = [0, 3, 5, 9, 12].map(hit)
        #expect(OrgIndex.split(&hits, from: 20, to: 30) == nil)
        #expect(hits?.map(\.seq) == [0, 3, 5, 9, 12])
        let (inside, rest) = try #require(OrgIndex.split(&hits, from: 0, to: 6))
        #expect(inside.map(\.seq) == [0, 3, 5] && rest?.map(\.seq) == [9, 12] && hits == nil)
        var middle: [IndexHit]? = [1, 4, 7, 10].map(hit)
        let (taken, left) = try #require(OrgIndex.split(&middle, from: 4, to: 8))
        #expect(taken.map(\.seq) == [4, 7] && left?.map(\.seq) == [1, 10])
        var whole: [IndexHit]? = [2, 3].map(hit)
        let (every, none) = try #require(OrgIndex.split(&whole, from: 0, to: 10))
        #expect(every.map(\.seq) == [2, 3] && none == nil)
    }
}
