import AuditBase
import Foundation
import LogProofs
import SegmentStore
import Testing

@testable import AuditEntries
@testable import ChainIndex
@testable import LogTree

/// Issue 8: the signer never signs a rollback. Its record of the newest checkpoint it signed
/// lives beside the key, so editing the data directory while the log is closed (cutting the
/// tail, emptying the checkpoint log) cannot get a smaller or forked tree signed.
@Suite struct SignerStateTests {
    func options(_ state: String) -> LedgerOptions {
        var o = Sample.options()
        o.signerState = state
        return o
    }

    func entries(_ from: Int, _ n: Int, org: String = "org_a") throws -> [PreparedEntry] {
        try (from..<from + n).map { try Sample.prepared(org: org, i: $0) }
    }

    @Test func aLogCutBackAndItsCheckpointsEmptiedIsNotSignedAgain() throws {
        let dir = temporaryDirectory("signer")
        let keys = temporaryDirectory("signer-keys")
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: keys)
        }
        let signer = try Sample.signer()
        let state = keys + "/log.key.state"
        var ends: [Int] = []
        do {
            let l = try Ledger(directory: dir, signer: signer, options: options(state))
            for b in 0..<3 {
                _ = try l.appendAndWait(try entries(b * 10, 10))
                // Where the blocks end (the file may go on with zeros filled ahead).
                ends.append(Int(l.unsealedSegments().first { $0.isOpen }?.endOffset ?? 0))
            }
            try l.checkpointNow()
            try l.close()
        }
        #expect(try SignerState.load(state)?.size == 30)
        // The insider, with auditd stopped: cut the last block, empty the checkpoint log.
        try shrink(DataDirectory(dir).segments + "/" + SegmentNames.open(0), to: ends[1])
        try shrink(DataDirectory(dir).checkpoints + "/" + CheckpointLog.logName, to: 0)
        try shrink(dir + "/checkpoints/checkpoints.idx", to: 0)
        try shrink(DataDirectory(dir).treeLeaves, to: 0)
        let e = #expect(throws: AuditError.self) {
            try Ledger(directory: dir, signer: signer, options: options(state))
        }
        #expect(
            e?.description.contains("20 entries") == true && e?.description.contains("30 entries") == true,
            "\(e.map { "\($0)" } ?? "")")
        #expect(e?.description.contains("rolled back") == true)
    }

    @Test func aRewrittenHistoryOfTheSameSizeIsNotSigned() throws {
        let a = temporaryDirectory("signer-a")
        let b = temporaryDirectory("signer-b")
        let keys = temporaryDirectory("signer-keys")
        defer { for d in [a, b, keys] { try? FileManager.default.removeItem(atPath: d) } }
        let signer = try Sample.signer()
        let state = keys + "/log.key.state"
        do {
            let l = try Ledger(directory: a, signer: signer, options: options(state))
            _ = try l.appendAndWait(try entries(0, 12))
            try l.close()
        }
        // Another history, as long, built with the same key: the signer refuses it.
        do {
            let l = try Ledger(directory: b, signer: signer, options: Sample.options())
            _ = try l.appendAndWait(try entries(100, 12, org: "org_z"))
            try l.close()
        }
        let e = #expect(throws: AuditError.self) { try Ledger(directory: b, signer: signer, options: options(state)) }
        #expect(e?.description.contains("rewritten") == true, "\(e.map { "\($0)" } ?? "")")
        // The genuine log opens, grows and is signed as before.
        let l = try Ledger(directory: a, signer: signer, options: options(state))
        _ = try l.appendAndWait(try entries(12, 3))
        try l.checkpointNow()
        #expect(try SignerState.load(state)?.size == 15)
        try l.close()
    }
}
