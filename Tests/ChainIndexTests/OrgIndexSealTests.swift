import AuditBase
import Foundation
import TestSupport
import Testing

@testable import AuditEntries
@testable import AuditIndex
@testable import SegmentStore

/// `OrgIndex.seal` takes each org's rows of the segment (a whole generation when it lies inside
/// the segment, a run of a larger one otherwise); each org's rows must stay ordered whatever
/// order they arrive in, and a seal must take exactly the segment's range, leave the rest, and
/// answer queries across both.
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

    /// `take` takes a range out of an org's rows, the rest keeping its order and only its own
    /// strings; the rows taken keep theirs.
    @Test func takeTakesTheRangeAndLeavesTheRest() throws {
        func rows(_ seqs: [UInt64]) -> UnsealedRows { UnsealedRows(seqs.map(hit)) }
        var all = rows([0, 3, 5, 9, 12])
        let none = all.take(from: 20, to: 30)
        #expect(none == nil)
        #expect(all.hits.map(\.seq) == [0, 3, 5, 9, 12])
        let firstRun = all.take(from: 0, to: 6)
        let inside = try #require(firstRun)
        #expect(inside.hits == [0, 3, 5].map(hit) && all.hits == [9, 12].map(hit))
        var middle = rows([1, 4, 7, 10])
        let middleRun = middle.take(from: 4, to: 8)
        let taken = try #require(middleRun)
        #expect(taken.hits == [4, 7].map(hit) && middle.hits == [1, 10].map(hit))
        var whole = rows([2, 3])
        let wholeRun = whole.take(from: 0, to: 10)
        let every = try #require(wholeRun)
        #expect(every.hits == [2, 3].map(hit) && whole.isEmpty)
    }

    /// An index section numbers its strings: every row reads back with its own action and
    /// actor, whatever order the strings repeat in, rows appended out of order included.
    @Test func aSectionNumbersItsStringsInAnyOrderOfRepeats() throws {
        func h(_ seq: UInt64, _ action: String, _ actor: String) -> IndexHit {
            IndexHit(
                seq: seq, orgSeq: seq,
                fields: IndexFields(
                    time: Int64(seq), category: .authentication, outcome: .success, action: action, actor: actor))
        }
        let hits = [
            h(1, "auth.login", "user:a"), h(2, "auth.logout", "user:a"), h(4, "auth.login", "user:b"),
            h(3, "data.read", "agent:c"), h(5, "auth.login", "user:a"), h(6, "auth.login", "user:a"),
        ]
        let rows = UnsealedRows(hits)
        let sorted = hits.sorted { $0.seq < $1.seq }
        #expect(rows.hits == sorted)
        let path = temporaryDirectory("index-numbering") + "/0.idx"
        try SealedIndex.write(path: path, segment: 0, firstSeq: 0, endSeq: 10, byOrg: [("org_a", rows)])
        #expect(try SealedIndex(path: path).hits(org: "org_a") == sorted)
    }

    /// A generation (the rows added while one segment was open) that lies inside the segment
    /// being sealed is taken whole; one that reaches past it (recovery's rows of every unsealed
    /// segment) is split; what is left stays readable, and emptied generations go.
    @Test func generationsAreTakenWholeOrSplit() throws {
        var u = UnsealedIndex()
        u.add([("a", hit(0)), ("b", hit(1)), ("a", hit(12))], openSince: nil)
        u.add([("a", hit(13)), ("b", hit(14))], openSince: 10)
        u.add([("b", hit(20)), ("a", hit(21))], openSince: 20)
        #expect(u.generations.map(\.start) == [0, 10, 20])
        let s0 = u.take(from: 0, to: 10)
        #expect(s0["a"]?.hits.map(\.seq) == [0] && s0["b"]?.hits.map(\.seq) == [1])
        #expect(u.parts(of: "a").flatMap(\.hits).map(\.seq) == [12, 13, 21])
        let s1 = u.take(from: 10, to: 20)
        #expect(s1["a"]?.hits.map(\.seq) == [12, 13] && s1["b"]?.hits.map(\.seq) == [14])
        #expect(u.generations.map(\.start) == [20])
        #expect(u.parts(of: "a").flatMap(\.hits).map(\.seq) == [21] && u.holds("b") && !u.holds("c"))
    }
}
