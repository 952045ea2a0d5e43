import ArgumentParser
import ChainIndex
import Foundation

/// `auditctl verify-export FILE`: checks an export offline, without the daemon or the data.
struct VerifyExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-export",
        abstract: "Verify an NDJSON or CSV export offline: content hashes, links, the org chain, inclusion proofs, the signed checkpoint.",
        discussion: "Exit status 0 when it verifies, 1 when it does not (the first bad line is named).")

    @Argument(help: "The export file (- for standard input).") var file: String
    @Option(help: "The verifier key to trust. Default: the key in the export's header (compare it with the operator's published key).") var key: String?

    func run() throws {
        let k: NoteVerifier?
        do { k = try key.map { try NoteVerifier($0) } } catch { throw ValidationError("--key: \(error)") }
        let data: Data
        if file == "-" { data = FileHandle.standardInput.readDataToEndOfFile() } else {
            guard let d = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            data = d
        }
        let text = String(decoding: data, as: UTF8.self)
        let lines: [String]
        if text.hasPrefix(ExportFormat.csvColumns) {
            lines = try ExportCSV.lines(text)
        } else {
            lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        }
        let r = ExportVerifier(key: k).verify(lines: lines)
        if let f = r.failure {
            print("FAILED: \(f)")
            throw ExitCode(1)
        }
        print("OK: \(r.entries) entries of org \(r.org), each proven in the signed tree of size \(r.treeSize)\(k == nil ? " (key taken from the export: compare it with the published one, or pass --key)" : "")")
    }
}
