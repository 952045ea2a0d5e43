import AuditBase
import Foundation
import LogProofs
import SegmentStore
import Testing

@testable import AuditEntries
@testable import ChainIndex
@testable import Verification

#if canImport(Glibc)
import Glibc
#endif

/// Issue 7 A2: whatever fails after the fdatasync that covers a group leaves its entries
/// durable and acknowledged; the log then refuses writes until it can go on safely, and goes
/// on once the storage recovers. A failed fdatasync refuses everything until a restart.
@Suite struct StorageFailureTests {
    func open(_ dir: String, _ signer: NoteSigner, rotateBytes: Int = 32 << 20) throws -> Ledger {
        try Ledger(directory: dir, signer: signer, options: Sample.options(rotateBytes: rotateBytes))
    }

    func batch(_ from: Int, _ n: Int) throws -> [PreparedEntry] {
        try (from..<from + n).map { try Sample.prepared(org: $0 % 2 == 0 ? "org_a" : "org_b", i: $0) }
    }

    /// Runs `fault` on the operations matched by `match`, once the ledger holds 10 entries.
    func afterSyncFailure(
        _ label: String, _ fault: FileFault = .fail(ENOSPC), match: @escaping (FileOperation) -> Bool
    ) throws {
        let dir = temporaryDirectory("fail")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let signer = try Sample.signer()
        let l = try open(dir, signer)
        _ = try l.appendAndWait(try batch(0, 10))
        let plan = FaultPlan()
        FileOps.intercept(dir, with: plan)
        defer { FileOps.stopIntercepting(dir) }
        plan.add(fault, where: match)

        // Durable before the failure: acknowledged, with receipts.
        let receipts = try l.appendAndWait(try batch(10, 5))
        #expect(receipts.map(\.seq) == Array(10..<15), "\(label)")
        #expect(throws: AuditError.self, "\(label)") { try l.checkpointNow() }
        guard case .suspended = l.writeState else {
            Issue.record("\(label): writes should be suspended, not \(l.writeState)")
            return
        }
        // Refused, and said so, while the storage has not recovered.
        let refused = #expect(throws: AuditError.self, "\(label)") { try l.appendAndWait(try batch(15, 3)) }
        #expect(refused?.description.contains("not stored") == true, "\(label)")
        #expect(l.refusedEntries == 3)
        // Space freed: the next group retries what was left undone and goes on.
        plan.clear()
        let more = try l.appendAndWait(try batch(15, 3))
        #expect(more.map(\.seq) == [15, 16, 17], "\(label)")
        #expect(l.writeState == .accepting)
        try l.checkpointNow()
        #expect(l.latestCheckpoint?.checkpoint.size == 18)
        try l.close()
        #expect(try Verifier(directory: dir, key: LogKeys(signer.verifier)).run().failure == nil, "\(label)")
        let again = try open(dir, signer)
        #expect(again.size == 18)
        for s in receipts { #expect(try again.entry(seq: s.seq).hash == s.hash) }
        try again.close()
    }

    @Test func fullDiskOnTheTreeLeavesAcknowledgedEntriesAndResumes() throws {
        try afterSyncFailure("tree level 0") { $0.isWrite(to: "level-00.hashes") }
    }

    @Test func shortWriteOnTheTreeLeavesAcknowledgedEntriesAndResumes() throws {
        try afterSyncFailure("short tree write", .shortWrite(7)) { $0.isWrite(to: "level-00.hashes") }
    }

    @Test func fullDiskOnTheCheckpointLogLeavesAcknowledgedEntriesAndResumes() throws {
        try afterSyncFailure("checkpoint log") { $0.isWrite(to: "checkpoints.log") }
    }

    @Test func failedCheckpointSyncLeavesAcknowledgedEntriesAndResumes() throws {
        try afterSyncFailure("checkpoint sync", .fail(EIO)) { $0.isSync(of: "checkpoints.log") }
    }

    @Test func failedRotationLeavesAcknowledgedEntriesAndResumes() throws {
        let dir = temporaryDirectory("fail")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let signer = try Sample.signer()
        let l = try open(dir, signer, rotateBytes: 2000)
        let plan = FaultPlan()
        FileOps.intercept(dir, with: plan)
        defer { FileOps.stopIntercepting(dir) }
        plan.add(.fail(ENOSPC)) {
            if case .create(let p) = $0 { return p.hasSuffix(".open.tmp") } else { return false }
        }
        let r = try l.appendAndWait(try batch(0, 20))
        #expect(r.count == 20)
        // The rotation follows the acks (format-spec.md §3); its failure suspends writes.
        try l.settle()
        #expect(l.writeState != .accepting)
        plan.clear()
        _ = try l.appendAndWait(try batch(20, 1))
        #expect(l.segments().count >= 2)
        try l.close()
        #expect(try Verifier(directory: dir, key: LogKeys(signer.verifier)).run().failure == nil)
    }

    /// A full disk while writing the block itself: nothing was stored, so "not stored" is
    /// the truth; the log stays usable.
    @Test func fullDiskOnTheSegmentWriteIsNotStored() throws {
        let dir = temporaryDirectory("fail")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let signer = try Sample.signer()
        let l = try open(dir, signer)
        _ = try l.appendAndWait(try batch(0, 4))
        // The work after that group (zeros filled ahead) is done before the fault.
        try l.settle()
        let plan = FaultPlan()
        FileOps.intercept(dir, with: plan)
        defer { FileOps.stopIntercepting(dir) }
        plan.add(.shortWrite(30), times: 1) { $0.isWrite(to: ".open") }
        #expect(throws: AuditError.self) { try l.appendAndWait(try batch(4, 3)) }
        let r = try l.appendAndWait(try batch(4, 3))
        #expect(r.map(\.seq) == [4, 5, 6])
        try l.close()
        let again = try open(dir, signer)
        #expect(again.size == 7)
        try again.close()
    }

    /// A failed fdatasync: nothing of the group is acknowledged, and every later write is
    /// refused until a restart, which recovers a log that verifies.
    @Test func failedSegmentSyncStopsWritesUntilARestart() throws {
        let dir = temporaryDirectory("fail")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let signer = try Sample.signer()
        let l = try open(dir, signer)
        _ = try l.appendAndWait(try batch(0, 4))
        // The work after that group (zeros filled ahead, synced too) is done before the fault.
        try l.settle()
        let plan = FaultPlan()
        FileOps.intercept(dir, with: plan)
        plan.add(.fail(EIO), times: 1) { $0.isSync(of: ".open") }
        #expect(throws: AuditError.self) { try l.appendAndWait(try batch(4, 3)) }
        guard case .failed = l.writeState else {
            Issue.record("expected failed, got \(l.writeState)")
            return
        }
        let e = #expect(throws: AuditError.self) { try l.appendAndWait(try batch(7, 1)) }
        #expect(e?.description.contains("restart") == true)
        FileOps.stopIntercepting(dir)
        try? l.close()
        let again = try open(dir, signer)
        #expect(again.size >= 4)
        _ = try again.appendAndWait(try batch(100, 1))
        try again.close()
        #expect(try Verifier(directory: dir, key: LogKeys(signer.verifier)).run().failure == nil)
    }
}
