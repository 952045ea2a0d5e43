import ArgumentParser
import AuditBase
import ChainIndex
import Foundation
import LogProofs
import LogTree

/// `auditctl verify-receipt FILE --key VKEY [--data DIR]`: checks writers' receipts offline.
struct VerifyReceipt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-receipt",
        abstract:
            "Verify entry receipts (from `auditctl append --receipts`) with the log's key, and optionally that a log still holds them.",
        discussion: """
            Each receipt is the log's signed checkpoint and the entry's inclusion proof in it:
            it verifies with the log's public key alone. With --data, the log at DIR must
            still hold every receipt's entry at its place and extend its checkpoint; a receipt
            whose entry is gone or changed is printed as REMOVED: that the log's own key
            signed a tree holding the entry is the proof. Exit 0 when all verify (and are
            held), 1 when a receipt is invalid, 5 when the log lost a receipted entry.
            """)

    @Argument(
        help:
            "A receipts file (NDJSON, one receipt per line), or one C2SP tlog-proof (`auditctl prove inclusion --format tlog-proof`); - for standard input."
    ) var file: String
    @Option(help: "The log's verifier key (as `auditctl key DIR` prints it, or the operator publishes it).") var key:
        String
    @Option(help: "A log's data directory to check the receipts against (read-only; works beside a running daemon).")
    var data: String?

    func run() throws {
        let k: LogKeys
        do {
            k =
                try data.map { try Ledger.keys(directory: $0, trusting: NoteVerifier(key)) }
                ?? LogKeys(NoteVerifier(key))
        } catch { throw ValidationError("--key: \(error)") }
        let text: String
        if file == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let d = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            text = String(decoding: d, as: UTF8.self)
        }
        var n = 0
        var removed = 0
        // A tlog-proof is one receipt over many lines; a receipts file is one per line.
        let tlogProof = text.hasPrefix(EntryReceipt.tlogProofTag + "\n")
        let items = tlogProof ? [text[...]] : text.split(separator: "\n")
        for (i, line) in items.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let r: EntryReceipt
            do {
                r = tlogProof ? try EntryReceipt(tlogProof: String(line)) : try EntryReceipt(json: String(line))
                _ = try r.verify(key: k)
            } catch {
                print("FAILED: \(tlogProof ? "the tlog-proof" : "receipt on line \(i + 1)"): \(error)")
                throw ExitCode(1)
            }
            n += 1
            if let data, let why = try r.check(against: data, key: k) {
                print("REMOVED: entry \(r.seq) (hash \(r.hash.hex)): \(why)")
                removed += 1
            }
        }
        // Nothing to verify is not a pass: a receipts file cut to nothing must not say OK.
        guard n > 0 else {
            print("FAILED: \(file == "-" ? "standard input" : file) holds no receipts")
            throw ExitCode(1)
        }
        guard removed == 0 else {
            print(
                "\(removed) of \(n) receipted entries are not in the log as signed: the receipts are the proof (signed by \(k.text))"
            )
            throw ExitCode(5)
        }
        print(
            "OK: \(n) receipt\(n == 1 ? "" : "s") verify with \(k.text)\(data.map { "; the log at \($0) holds every entry at its place" } ?? "")"
        )
    }
}
