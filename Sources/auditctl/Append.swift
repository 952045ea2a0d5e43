import ArgumentParser
import AuditBase
import AuditClient
import AuditWire
import Foundation
import LogProofs
import LogTree
import WriterWitness

/// `auditctl append`: writes entries through a running daemon's socket (for scripts).
struct Append: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append NDJSON entries (standard input, or --entry) through auditd's ingest socket.",
        discussion: """
            Prints one JSON receipt per entry once it is durable: {"line","seq","hash","org_seq","duplicate"}.
            Refused entries are reported on standard error with their line number (exit status 3).
            With --retry, entries whose connection was lost are sent again on a new connection;
            entries that carry an idempotency_key are then stored exactly once.
            """)

    @Option(help: "The ingest socket.") var socket = "./auditd.sock"
    @Option(help: "One entry as JSON (instead of standard input).") var entry: String?
    @Option(help: "Entries per pipelined batch.") var batch = 256
    @Option(help: "Reconnect and resend this many times after a lost connection.") var retry = 0
    @Option(
        help:
            "A file keeping the newest checkpoint this writer verified: before and after appending, the log's latest must extend it (a rollback or fork fails, exit 4). Needs --key."
    ) var state: String?
    @Option(help: "The log's verifier key (as `auditctl key DIR` prints it), to check checkpoints with.") var key:
        String?
    @Option(
        help:
            "A witness's verifier key (repeatable; with --state): the checkpoint kept must carry --quorum valid cosignatures from these witnesses."
    ) var witness: [String] = []
    @Option(help: "Cosignatures required from the --witness keys (default: all of them).") var quorum: Int?
    @Option(
        help:
            "Write a receipt per acknowledged entry to this file (NDJSON: its signed checkpoint and inclusion proof; one request per 1,024 entries). Checked with --key when given; `auditctl verify-receipt` checks them offline."
    ) var receipts: String?
    @Option(
        help:
            "ndjson (the default: one file, one receipt per line) or tlog-proof: --receipts is then a directory, one C2SP tlog-proof per entry (entry-SEQ.tlog-proof) that other ecosystems' tools verify."
    ) var receiptFormat = "ndjson"

    func run() async throws {
        guard receiptFormat == "ndjson" || receiptFormat == "tlog-proof" else {
            throw ValidationError("--receipt-format is ndjson or tlog-proof, not \(receiptFormat)")
        }
        var lines: [(Int, [UInt8])] = []
        if let entry {
            lines = [(1, Array(entry.utf8))]
        } else {
            var n = 0
            while let l = readLine(strippingNewline: true) {
                n += 1
                if !l.trimmingCharacters(in: .whitespaces).isEmpty { lines.append((n, Array(l.utf8))) }
            }
        }
        let witnesses: [CosignatureVerifier]
        do {
            witnesses = try self.witness.map { try CosignatureVerifier($0) }
            try CosignatureVerifier.distinct(witnesses)
        } catch let e as Note.Failure { throw ValidationError("--witness: \(e.description)") }
        let need = quorum ?? witnesses.count
        guard need >= 0, need <= witnesses.count, witnesses.isEmpty || state != nil else {
            throw ValidationError("--witness needs --state, and --quorum at most the number of --witness keys")
        }
        let held = try state.map { path -> WriterWitness in
            guard let key else {
                throw ValidationError("--state needs --key: checkpoints are checked with the key you trust")
            }
            do {
                return try WriterWitness(
                    path: path, key: LogKeys(try NoteVerifier(key)), witnesses: witnesses, quorum: need)
            } catch let e as Note.Failure { throw ValidationError("--key: \(e.description)") }
        }
        if let held { try await Self.witness(socket: socket, held) }
        let client = RetryingAuditClient(socketPath: socket, retries: retry)
        var rejected = 0
        var lastSeq: UInt64?
        var acked: [(line: Int, seq: UInt64, hash: Hash)] = []
        var i = 0
        do {
            while i < lines.count {
                let chunk = Array(lines[i..<min(lines.count, i + batch)])
                let results = try await client.append(batch: chunk.map(\.1))
                var out = ""
                for ((line, _), r) in zip(chunk, results) {
                    switch r {
                    case .success(let a):
                        lastSeq = max(lastSeq ?? 0, a.seq)
                        if receipts != nil, let h = Hash(bytes: a.hash) { acked.append((line, a.seq, h)) }
                        out +=
                            "{\"line\":\(line),\"seq\":\(a.seq),\"org_seq\":\(a.orgSeq),\"hash\":\"\(a.hash.hex)\",\"duplicate\":\(a.duplicate)}\n"
                    case .failure(let e):
                        rejected += 1
                        printError("line \(line): \(e)")
                    }
                }
                try FileHandle.standardOutput.write(contentsOf: Data(out.utf8))
                i += chunk.count
            }
        } catch {
            await client.close()
            throw CLIError("\(error); \(i) entries were acknowledged before it")
        }
        let n = await client.reconnects
        if n > 0 { printError("reconnected \(n) times") }
        await client.close()
        if let held { try await Self.witness(socket: socket, held, atLeast: lastSeq.map { $0 + 1 } ?? 0) }
        if let receipts {
            let k: LogKeys?
            do { k = try key.map { LogKeys(try NoteVerifier($0)) } } catch let e as Note.Failure {
                throw ValidationError("--key: \(e.description)")
            }
            try await Self.writeReceipts(
                acked, socket: socket, to: receipts, tlogProof: receiptFormat == "tlog-proof", key: k)
        }
        if rejected > 0 { throw ExitCode(3) }
    }

    /// Fetches the log's latest checkpoint with the proof that it extends the one kept at
    /// `path`, checks both, and keeps the new one; exit 4 on a rollback or a fork (before
    /// appending: then nothing is written). A log with no checkpoint while one is kept is a
    /// rollback; witnessed checkpoints that cannot be had are said on standard error.
    /// After appending, `atLeast` is one past the last acknowledged entry: checkpoints are
    /// signed within a second, so it waits (up to 5 s) for one that covers them.
    static func witness(socket: String, _ w: WriterWitness, atLeast: UInt64 = 0) async throws {
        let c = try await AuditClient.connect(socketPath: socket)
        do {
            let outcome = try await w.check(c, atLeast: atLeast)
            if let why = outcome.unwitnessed {
                printError(
                    "NOT WITNESSED: \(why); the log's own checkpoint extends the one kept, which stays as it was")
            }
        } catch let e as WriterWitness.Refused {
            await c.close()
            printError("\(e)")
            throw ExitCode(4)
        } catch {
            await c.close()
            throw CLIError("cannot check the log's checkpoint: \(error)")
        }
        await c.close()
    }

    /// Fetches the receipts of `acked` (one INCLUSION request per 1,024 entries, waiting up to
    /// 5 s for a checkpoint that covers them), checks them with `key`, and writes them: to one
    /// NDJSON file at `path`, or (`tlogProof`) as one C2SP tlog-proof per entry in the directory
    /// `path`.
    static func writeReceipts(
        _ acked: [(line: Int, seq: UInt64, hash: Hash)], socket: String, to path: String, tlogProof: Bool,
        key: LogKeys?
    ) async throws {
        if tlogProof {
            do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
                throw CLIError("cannot make the receipts directory \(path): \(error.localizedDescription)")
            }
        }
        let c = try await AuditClient.connect(socketPath: socket)
        var out = ""
        do {
            var i = 0
            while i < acked.count {
                let chunk = Array(acked[i..<min(acked.count, i + InclusionReply.maxEntries)])
                var reply: InclusionReply?
                for attempt in 0..<25 {
                    if attempt > 0 { try await Task.sleep(for: .milliseconds(200)) }
                    do {
                        reply = try await c.inclusion(chunk.map(\.seq))
                        break
                    } catch let e as WireError where e.code == WireErrorCode.unavailable.rawValue { continue }
                }
                guard let reply else {
                    throw CLIError(
                        "no checkpoint covered entries \(chunk[0].seq)… within 5 s; receipts were not written")
                }
                // The statements handing the log's key on (format-spec.md §8.8), asked after the
                // checkpoint: JSON receipts carry them, so a holder of the first key checks a
                // checkpoint a later key signed.
                let successions = try await c.checkpoint(since: 0, successions: true).successions
                let keys = try key.map { try LogKeys(trusting: $0.original, successions: successions) }
                for (a, proof) in zip(chunk, reply.proofs) {
                    let r = EntryReceipt(
                        seq: a.seq, hash: a.hash, checkpoint: reply.note,
                        inclusion: proof.compactMap { Hash(bytes: $0) }, successions: tlogProof ? [] : successions)
                    if let keys { _ = try r.verify(key: keys) }
                    if tlogProof {
                        let file = path + "/entry-\(a.seq).tlog-proof"
                        do { try Data(r.tlogProof.utf8).write(to: URL(fileURLWithPath: file)) } catch {
                            throw CLIError("cannot write the receipt \(file): \(error.localizedDescription)")
                        }
                    } else {
                        out += r.json(extra: "\"line\":\(a.line),") + "\n"
                    }
                }
                i += chunk.count
            }
        } catch {
            await c.close()
            throw error
        }
        await c.close()
        if tlogProof { return }
        do { try Data(out.utf8).write(to: URL(fileURLWithPath: path)) } catch {
            throw CLIError("cannot write receipts to \(path): \(error.localizedDescription)")
        }
    }
}
