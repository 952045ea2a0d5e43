import AuditBase
import AuditEntries
import ChainIndex
import Foundation
import LogProofs
import Logging
import SegmentStore
import TestSupport
import Testing

@testable import auditd

/// Issue 18 item 8: `checkpoints/cosigned` never goes backwards, when the background service
/// and exports keep cosigned checkpoints at once (each from its own thread, in any order).
@Suite struct CosignedKeepTests {
    @Test func theCosignedCheckpointNeverGoesBackwards() throws {
        let dir = temporaryDirectory("cosigned")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let signer = try NoteSigner.generate(name: "audit.test/log")
        var o = LedgerOptions()
        o.background = false
        let ledger = try Ledger(directory: dir + "/log", signer: signer, options: o)
        defer { _ = try? ledger.close() }
        // Forty checkpoints of growing size (their witnesses never asked: keep is what is tested).
        var cps: [SignedCheckpoint] = []
        for i in 0..<40 {
            let json =
                #"{"org":"org_a","category":"access","action":"a.b","actor":{"type":"human","id":"u"},"target":{"type":"t","id":"\#(i)"},"outcome":"success","source":{"service":"s"},"occurred_at":"2026-01-01T00:00:00Z"}"#
            _ = try ledger.appendAndWait([
                try Entry.prepare(
                    json: Array(json.utf8), receivedAt: 1_767_225_600_000 + Int64(i),
                    writer: Writer(uid: 0, gid: 0, via: "test"))
            ])
            try ledger.checkpointNow()
            cps.append(try #require(ledger.latestCheckpoint))
        }
        let witness = Cosigner(key: try NoteSigner.generate(name: "witness.test/w1")).verifier.text
        let logger = Logger(label: "test")
        let path = dir + "/log/checkpoints/cosigned"
        // Twenty rounds, each from no cosigned checkpoint (a race shows in a few of them).
        for _ in 0..<20 {
            try? FileManager.default.removeItem(atPath: path)
            let w = try Witnessing(ledger: ledger, witnesses: ["http://127.0.0.1:9 \(witness)"], quorum: 1)
            // A reader watches the file while eight threads keep the checkpoints in shuffled order.
            let stop = Atomic(false)
            let seen = Atomic<[UInt64]>([])
            let watcher = Thread {
                var last: UInt64 = 0
                while !stop.load() {
                    if let b = try? FileOps.readFile(path),
                        let cp = try? SignedCheckpoint(
                            note: String(decoding: b, as: UTF8.self), verifier: signer.verifier)
                    {
                        if cp.checkpoint.size < last { seen.update { $0.append(cp.checkpoint.size) } }
                        last = max(last, cp.checkpoint.size)
                    }
                }
            }
            watcher.start()
            let group = DispatchGroup()
            for _ in 0..<8 {
                group.enter()
                let order = cps.shuffled()
                Thread {
                    for cp in order { w.keep(cp, logger: logger) }
                    group.leave()
                }.start()
            }
            group.wait()
            stop.store(true)
            while !watcher.isFinished { usleep(1_000) }
            #expect(seen.load().isEmpty, "the file went back to sizes \(seen.load())")
            #expect(w.cosigned?.checkpoint.size == cps.last?.checkpoint.size)
            let final = try #require(try FileOps.readFile(path))
            #expect(
                try SignedCheckpoint(note: String(decoding: final, as: UTF8.self), verifier: signer.verifier).checkpoint
                    .size == 40)
        }
    }
}

/// A value shared between test threads.
final class Atomic<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ v: T) { value = v }
    func load() -> T { lock.withLock { value } }
    func store(_ v: T) { lock.withLock { value = v } }
    func update(_ f: (inout T) -> Void) { lock.withLock { f(&value) } }
}
