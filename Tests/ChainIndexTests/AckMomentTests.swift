import AuditBase
import Foundation
import LogProofs
import TestSupport
import Testing

@testable import AuditEntries
@testable import ChainIndex
@testable import LogTree

/// The moment an ack is released (format-spec.md §3): once its group is durable, in the index
/// and the tree, and has done what it asked for by name; not after the periodic checkpoint.
@Suite struct AckMomentTests {
    /// Holds the checkpoint log's first write until an ack has arrived (or 10 s have passed),
    /// and records which came first.
    final class HoldCheckpoint: FileInterceptor, @unchecked Sendable {
        let cond = NSCondition()
        var acked = false
        var sawAckFirst: Bool?

        func ack() {
            cond.lock()
            acked = true
            cond.broadcast()
            cond.unlock()
        }

        func before(_ op: FileOperation) -> FileFault {
            guard case .write(let path, _, _) = op, path.hasSuffix(CheckpointLog.logName) else { return .proceed }
            cond.lock()
            defer { cond.unlock() }
            if sawAckFirst == nil {
                let deadline = Date().addingTimeInterval(10)
                while !acked && cond.wait(until: deadline) {}
                sawAckFirst = acked
            }
            return .proceed
        }

        func after(_ op: FileOperation, bytes: UnsafeRawBufferPointer?) {}
        func failed(_ op: FileOperation) {}
    }

    final class ReceiptsBox: @unchecked Sendable {
        let cond = NSCondition()
        var value: [Receipt]?
        var done = false

        func set(_ v: [Receipt]?) {
            cond.lock()
            (value, done) = (v, true)
            cond.broadcast()
            cond.unlock()
        }

        func wait() -> [Receipt]? {
            cond.lock()
            defer { cond.unlock() }
            while !done { _ = cond.wait(until: Date().addingTimeInterval(30)) }
            return value
        }
    }

    @Test func anAckDoesNotWaitForThePeriodicCheckpoint() throws {
        let dir = temporaryDirectory("ack")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = Sample.options()
        o.checkpointInterval = .zero
        o.signerState = dir + ".signer"
        defer { try? FileManager.default.removeItem(atPath: dir + ".signer") }
        let l = try Ledger(directory: dir, signer: try Sample.signer(), options: o)
        let hold = HoldCheckpoint()
        FileOps.intercept(dir, with: hold)
        defer { FileOps.stopIntercepting(dir) }

        let done = ReceiptsBox()
        l.append([try Sample.prepared(org: "org_a", i: 0)]) { r in
            hold.ack()
            done.set(try? r.get())
        }
        let receipts = done.wait()
        // The periodic checkpoint was signed after the ack, and still covers the entry.
        try l.checkpointNow()
        #expect(receipts?.map(\.seq) == [0])
        #expect(hold.sawAckFirst == true, "the checkpoint was written before the entry's ack was released")
        #expect(l.latestCheckpoint?.checkpoint.size == 1)
        try l.close()
    }

    @Test func aCheckpointAskedForIsSignedBeforeItsAnswer() throws {
        let dir = temporaryDirectory("ack")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let l = try Ledger(directory: dir, signer: try Sample.signer(), options: Sample.options())
        _ = try l.appendAndWait([try Sample.prepared(org: "org_a", i: 0), try Sample.prepared(org: "org_b", i: 1)])
        try l.checkpointNow()
        #expect(l.latestCheckpoint?.checkpoint.size == 2)
        let (r, cp) = try l.appendAnchored(try Sample.prepared(org: "org_a", i: 2))
        #expect(cp.checkpoint.size == r.seq + 1)
        try l.close()
    }
}
