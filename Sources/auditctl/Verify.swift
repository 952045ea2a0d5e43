import ArgumentParser
import ChainIndex
import Foundation

/// `auditctl verify DIR`: rechecks everything.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recheck a data directory: block checksums, content hashes, both chains, the tree, every checkpoint.",
        discussion: "Read-only. Exit status 0 when the log verifies, 1 when it does not (the first failure is named with its sequence number, file and offset).")

    @Argument(help: "The data directory.")
    var dir: String

    @Option(help: "The verifier key to trust (name+hash+key). Default: the key recorded in DIR; pass the operator's published key to rule out a swapped one.")
    var key: String?

    @Option(help: "A signed checkpoint kept from earlier (a file holding the note): fail unless the log extends it (repeatable).")
    var checkpoint: [String] = []

    @Flag(help: "No progress bar.")
    var quiet = false

    func run() throws {
        let k: NoteVerifier?
        do { k = try key.map { try NoteVerifier($0) } } catch { throw ValidationError("--key: \(error)") }
        var v = try Verifier(directory: dir, key: k)
        v.collect = OperatorRecords.actions
        for path in checkpoint {
            guard let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }) else {
                throw CLIError("cannot read checkpoint file \(path)")
            }
            do { v.pinned.append((try SignedCheckpoint(note: text, verifier: v.trusted), path)) } catch {
                throw CLIError("\(path) is not a checkpoint signed by the trusted key: \(error)")
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
        print("OK: \(report.entries) entries, \(report.orgs) orgs, \(report.checkpoints) checkpoints (latest at size \(report.latestCheckpoint.map(String.init) ?? "none")); \(String(format: "%.2f", secs)) s, \(Int(Double(report.entries) / max(secs, 0.001))) entries/s")
    }
}
