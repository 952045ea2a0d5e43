import ArgumentParser
import AuditBase
import ChainIndex
import Foundation
import LogProofs
import Verification

/// `auditctl verify DIR`: rechecks everything.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recheck a data directory: block checksums, content hashes, both chains, the tree, every checkpoint.",
        discussion:
            "Read-only. Exit status 0 when the log verifies, 1 when it does not (the first failure is named with its sequence number, file and offset)."
    )

    @Argument(help: "The data directory.")
    var dir: String

    @Option(
        help:
            "The verifier key to trust (name+hash+key). Default: the key recorded in DIR; pass the operator's published key to rule out a swapped one."
    )
    var key: String?

    @Option(
        help:
            "A signed checkpoint kept from earlier (a file holding the note): fail unless the log extends it (repeatable)."
    )
    var checkpoint: [String] = []

    @Option(
        help:
            "A witness's verifier key (repeatable): the log's witnessed checkpoint (checkpoints/cosigned) and every --checkpoint must carry --quorum valid cosignatures, and the log must extend them."
    )
    var witness: [String] = []

    @Option(help: "Cosignatures required from the --witness keys (default: all of them).")
    var quorum: Int?

    @Flag(help: "No progress bar.")
    var quiet = false

    func run() throws {
        let k: LogKeys?
        do { k = try key.map { try Ledger.keys(directory: dir, trusting: NoteVerifier($0)) } } catch {
            throw ValidationError("--key: \(error)")
        }
        var v = try Verifier(directory: dir, key: k)
        v.collect = OperatorRecords.actions
        for path in checkpoint {
            guard let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) })
            else {
                throw CLIError("cannot read checkpoint file \(path)")
            }
            do { v.pinned.append((try SignedCheckpoint(note: text, verifier: v.trusted), path)) } catch {
                throw CLIError("\(path) is not a checkpoint signed by the trusted key: \(error)")
            }
        }
        var witnessed = ""
        if !witness.isEmpty {
            let ws: [CosignatureVerifier]
            do {
                ws = try witness.map { try CosignatureVerifier($0) }
                try CosignatureVerifier.distinct(ws)
            } catch { throw ValidationError("--witness: \(error)") }
            let need = quorum ?? ws.count
            guard need >= 1, need <= ws.count else {
                throw ValidationError("--quorum \(need) needs at least that many --witness keys")
            }
            let cosignedPath = DataDirectory(dir).cosigned
            if let text = FileManager.default.contents(atPath: cosignedPath).map({ String(decoding: $0, as: UTF8.self) }
            ) {
                do { v.pinned.append((try SignedCheckpoint(note: text, verifier: v.trusted), cosignedPath)) } catch {
                    throw CLIError("\(cosignedPath) is not a checkpoint signed by the trusted key: \(error)")
                }
            }
            guard !v.pinned.isEmpty else {
                print(
                    "FAILED: no witnessed checkpoint: \(cosignedPath) does not exist and no --checkpoint was given (is auditd configured with --witness?)"
                )
                throw ExitCode(1)
            }
            for (cp, source) in v.pinned {
                var by: [String] = []
                for w in ws {
                    do { if try w.cosignature(in: cp.note) != nil { by.append(w.name) } } catch {
                        print("FAILED: the checkpoint in \(source) (size \(cp.checkpoint.size)): \(error)")
                        throw ExitCode(1)
                    }
                }
                guard by.count >= need else {
                    print(
                        "FAILED: the checkpoint in \(source) (size \(cp.checkpoint.size)) carries \(by.count) valid cosignature\(by.count == 1 ? "" : "s") of the \(need) required from the given witnesses"
                    )
                    throw ExitCode(1)
                }
                witnessed =
                    "; the log extends the checkpoint at size \(cp.checkpoint.size) cosigned by \(by.joined(separator: ", "))"
            }
        }
        let bar = quiet ? nil : ProgressBar(label: "verifying")
        let started = Date()
        let report = v.run { done, total in bar?.update(done, total) }
        bar?.finish()
        let secs = Date().timeIntervalSince(started)
        for n in report.notes { print("note: \(n)") }
        if let f = report.failure {
            print("FAILED: \(f)")
            throw ExitCode(1)
        }
        let records = OperatorRecords(dir: dir, entries: report.collected, since: report.archivedUntil)
        for n in records.notes { print("note: \(n)") }
        if let f = records.failures.first {
            print("FAILED: \(f)")
            throw ExitCode(1)
        }
        if report.personalOpened + report.personalErased > 0 {
            print(
                "personal fields: \(report.personalOpened) value\(report.personalOpened == 1 ? "" : "s") checked against their commitments, \(report.personalErased) ERASED under a recorded erasure"
            )
        }
        for e in report.erasures {
            print(
                "  ERASED (entry \(e.record), authority \(e.authority)): \(e.fields) field\(e.fields == 1 ? "" : "s")"
                    + (e.withheld > 0
                        ? "; \(e.withheld) entr\(e.withheld == 1 ? "y" : "ies") written in the clear WITHHELD from readers"
                        : ""))
        }
        print(
            "OK: \(report.entries) entries, \(report.orgs) orgs, \(report.checkpoints) checkpoints (latest at size \(report.latestCheckpoint.map(String.init) ?? "none")); \(String(format: "%.2f", secs)) s, \(Int(Double(report.entries) / max(secs, 0.001))) entries/s\(witnessed)"
        )
    }
}
