import AuditBase
import Foundation
import Testing

@testable import AuditEntries
@testable import ChainIndex
@testable import SegmentStore
@testable import Verification

/// A verification builds each entry's leaf on the preparing workers, from the stored tree's
/// leaves its link names; the serial check takes it only when those are the leaves its own
/// chains reached, so a built leaf is never trusted for other inputs than its own.
@Suite struct PreparedLeafTests {
    @Test func aBuiltLeafIsTakenOnlyForTheLeavesItWasBuiltFrom() throws {
        let dir = temporaryDirectory("prepared-leaf")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let l = try Ledger(directory: dir, signer: try Sample.signer(), options: Sample.options())
        defer { try? l.close() }
        _ = try l.appendAndWait((0..<60).map { try Sample.prepared(org: "org_\($0 % 4)", i: $0) })
        try l.sealNow()
        let records = try l.store.read(seqs: (0..<60).map { UInt64($0) })
        let b = try ChainChecker.prepare(RecordRun(records), tree: l.tree)
        #expect(b.have == 60)
        let elsewhere = SHA256.hash(Array("not a leaf of this log".utf8))
        for i in 0..<60 {
            let seq = UInt64(i)
            let hd = try #require(b.entries[i].header)
            let prev = seq > 0 ? try l.tree.leaf(seq - 1) : .zero
            let prevOrg = hd.prevOrgDelta > 0 ? try l.tree.leaf(seq - hd.prevOrgDelta) : .zero
            // From the leaves the chains reached: the stored leaf itself.
            #expect(
                b.builtLeaf(i, prev: prev, prevOrg: prevOrg, prevOrgDelta: hd.prevOrgDelta) == (try l.tree.leaf(seq)))
            // From any other leaf before it, or of its org's previous entry: not taken.
            #expect(b.builtLeaf(i, prev: elsewhere, prevOrg: prevOrg, prevOrgDelta: hd.prevOrgDelta) == nil)
            #expect(b.builtLeaf(i, prev: prev, prevOrg: elsewhere, prevOrgDelta: hd.prevOrgDelta) == nil)
        }
        // And the whole batch checks.
        var checker = ChainChecker(ledger: l, checkpoints: try l.verifiedCheckpoints().0)
        #expect(try checker.check(prepared: b) == nil)
        #expect(checker.position == 60)
    }
}
