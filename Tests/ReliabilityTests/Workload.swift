import Archive
import AuditAccess
import AuditBase
import Foundation
import LogProofs
import SegmentStore
import TestSupport

@testable import AuditEntries
@testable import ChainIndex
@testable import Verification

/// One run of everything that writes to a data directory and its archive: appends, rotation,
/// sealing, checkpoints, token, hold and retention changes, an archive move, a restore, a
/// purge with its audit entries, a clean close. Each step may fail (a fault is injected
/// somewhere); the run goes on where a real caller would, and records what it was promised.
struct Workload {
    let root: String
    let signer: NoteSigner
    /// How many durable operations have happened so far (to date each acknowledgement).
    var operations: @Sendable () -> Int = { 0 }
    var data: String { root + "/data" }
    var archive: String { root + "/archive" }

    /// What the run was promised, and any broken rule it saw while running.
    struct Outcome {
        /// Receipts of acknowledged entries.
        var acked: [Receipt] = []
        /// For each receipt, how many durable operations had happened when it was given.
        var ackedAfter: [Int] = []
        /// Rules broken during the run.
        var violations: [String] = []
        /// Steps that failed (expected under faults).
        var failures: [String] = []
    }

    func options() -> LedgerOptions {
        var o = LedgerOptions()
        o.retired = ArchiveTier()
        o.signerState = root + "/signer.state"
        o.background = false
        // Checkpoints only when asked (a clock-driven one would make runs differ).
        o.checkpointInterval = .seconds(3600)
        o.store.rotateBytes = 2500
        o.store.blockTarget = 1024
        return o
    }

    /// Appends `entries` and returns their receipts with the number of file operations done
    /// when the ack was given (counted on the commit thread, as the ack goes out), once the
    /// work that follows the ack is done too: so every run sees the same operations in the
    /// same order.
    static func append(
        _ entries: [PreparedEntry], to l: Ledger, operations: @escaping @Sendable () -> Int
    ) throws -> ([Receipt], Int) {
        let box = AckBox()
        l.append(entries) { r in box.set(r, operations()) }
        let (r, at) = box.wait()
        let receipts = try r.get()
        try l.settle()
        return (receipts, at)
    }

    static func date(_ s: String) -> Date { Date(timeIntervalSince1970: Double(Timestamp.parse(s) ?? 0) / 1000) }

    static func batch(_ from: Int, _ n: Int) -> [PreparedEntry] {
        (from..<from + n).compactMap { i in
            let org = ["org_a", "org_b", "org_c"][i % 3]
            let json =
                #"{"org":"\#(org)","category":"access","action":"access.granted","actor":{"type":"human","id":"u\#(i % 5)"},"target":{"type":"p","id":"p\#(i)"},"outcome":"success","source":{"service":"svc"},"occurred_at":"2020-01-01T00:00:00Z","metadata":{"i":\#(i),"pad":"\#(String(repeating: "x", count: 100))"}}"#
            return try? Entry.prepare(
                json: Array(json.utf8), receivedAt: 1_577_836_800_000 + Int64(i),
                writer: Writer(uid: 0, gid: 0, via: "test"))
        }
    }

    func run() -> Outcome {
        var out = Outcome()
        func step(_ name: String, _ body: () throws -> Void) {
            do { try body() } catch { out.failures.append("\(name): \(error)") }
        }
        let l: Ledger
        do { l = try Ledger(directory: data, signer: signer, options: options()) } catch {
            out.failures.append("open: \(error)")
            return out
        }
        var next = 0
        func append(_ n: Int) {
            let stopped: Bool = { if case .failed = l.writeState { return true } else { return false } }()
            step("append") {
                let (r, at) = try Self.append(Self.batch(next, n), to: l, operations: operations)
                if stopped {
                    out.violations.append("an append was acknowledged after a failed sync (seqs \(r.map(\.seq)))")
                }
                out.acked += r
                out.ackedAfter += r.map { _ in at }
            }
            next += n
        }
        for _ in 0..<3 { append(6) }
        step("seal") { try l.sealNow() }
        step("checkpoint") { try l.checkpointNow() }
        let tokens = TokenStore.path(forData: data)
        step("token") { _ = try TokenStore.create(path: tokens, org: "org_a", label: "t") }
        var holdID: String?
        step("hold") {
            holdID = try LegalHolds.create(
                dir: data, org: "org_x", from: nil, to: nil, reason: "r", authority: "a",
                now: Self.date("2023-01-01T00:00:00Z")
            ).id
        }
        step("retention") { _ = try RetentionPolicy.extend(dir: data, org: "org_c", years: 8) }
        append(5)
        let backend: LocalDirectoryBackend
        do { backend = try LocalDirectoryBackend(root: archive) } catch {
            out.failures.append("backend: \(error)")
            try? l.close()
            return out
        }
        let archiver = Archiver(ledger: l, backend: backend, clock: { Self.date("2023-01-01T00:00:00Z") })
        var bundle: String?
        step("archive") {
            if let first = l.segments().first(where: { $0.state == .sealed }) {
                bundle = try archiver.archive(first)
            }
        }
        step("restore") {
            if let bundle {
                _ = try Archiver.restore(
                    dataDir: data, backend: backend, verifier: LogKeys(signer.verifier), bundle: bundle)
                try l.reinstateRestored()
            }
        }
        append(4)
        step("archive again") {
            for info in l.segments().filter({ $0.state == .sealed }).prefix(2) { _ = try archiver.archive(info) }
        }
        let later = Archiver(ledger: l, backend: backend, clock: { Self.date("2040-01-01T00:00:00Z") })
        step("purge") {
            _ = try later.purge(policy: try RetentionPolicy.load(dir: data), holds: try LegalHolds.load(dir: data)) {
                decisions in
                let (r, at) = try Self.append(
                    decisions.compactMap { d in
                        let json =
                            #"{"org":"org_ops","category":"privacy","action":"archive.purged","actor":{"type":"service","id":"test"},"target":{"type":"bundle","id":"\#(d.bundle)"},"outcome":"success","source":{"service":"svc"},"occurred_at":"2040-01-01T00:00:00Z","metadata":{}}"#
                        return try? Entry.prepare(
                            json: Array(json.utf8), receivedAt: 2_208_988_800_000,
                            writer: Writer(uid: 0, gid: 0, via: "test"))
                    }, to: l, operations: operations)
                out.acked += r
                out.ackedAfter += r.map { _ in at }
            }
        }
        step("hold release") {
            if let holdID { _ = try LegalHolds.release(dir: data, id: holdID, now: Self.date("2040-01-02T00:00:00Z")) }
        }
        append(3)
        step("close") { try l.close() }
        return out
    }

    /// After the run (and any crash), the directory opens, keeps every acknowledged entry,
    /// and verifies. Returns the broken rules.
    func check(_ outcome: Outcome, ackedBy limit: Int = .max) -> [String] {
        var bad = outcome.violations
        let l: Ledger
        do { l = try Ledger(directory: data, signer: signer, options: options()) } catch {
            return bad + ["reopen failed: \(error)"]
        }
        for (r, at) in zip(outcome.acked, outcome.ackedAfter) where at <= limit {
            guard r.seq < l.size else {
                bad.append("acknowledged entry \(r.seq) is gone (log size \(l.size))")
                continue
            }
            do {
                let leaf = try l.tree.leaf(r.seq)
                if leaf != r.hash { bad.append("acknowledged entry \(r.seq) has another hash") }
                let e = try l.entry(seq: r.seq)
                if e.hash != r.hash { bad.append("acknowledged entry \(r.seq) reads back altered") }
            } catch let e as AuditError where e.code == .retired {
                // In the archive tier (or purged): its leaf, checked above, still proves it.
            } catch {
                bad.append("acknowledged entry \(r.seq) cannot be read: \(error)")
            }
        }
        do { try l.close() } catch { bad.append("close after reopen: \(error)") }
        do {
            let report = try Verifier(directory: data, key: LogKeys(signer.verifier)).run()
            if let f = report.failure { bad.append("verify: \(f)") }
        } catch { bad.append("verify: \(error)") }
        return bad
    }
}

/// An append's result and the operation count at its ack, handed from the commit thread.
final class AckBox: @unchecked Sendable {
    private let cond = NSCondition()
    private var value: (Result<[Receipt], Error>, Int)?

    func set(_ r: Result<[Receipt], Error>, _ at: Int) {
        cond.lock()
        value = (r, at)
        cond.broadcast()
        cond.unlock()
    }

    func wait() -> (Result<[Receipt], Error>, Int) {
        cond.lock()
        defer { cond.unlock() }
        while true {
            if let value { return value }
            cond.wait()
        }
    }
}
