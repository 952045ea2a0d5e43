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
            lines = try CSV.exportLines(text)
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

/// RFC 4180 parsing of CSV exports, turned back into the NDJSON lines the verifier reads.
enum CSV {
    static func rows(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = ""
        var inQuotes = false
        var it = Array(text.unicodeScalars)[...]
        while let c = it.popFirst() {
            if inQuotes {
                if c == "\"" {
                    if it.first == "\"" { field.unicodeScalars.append("\""); it = it.dropFirst() } else { inQuotes = false }
                } else { field.unicodeScalars.append(c) }
            } else if c == "\"" { inQuotes = true }
            else if c == "," { row.append(field); field = "" }
            else if c == "\n" { row.append(field); rows.append(row); row = []; field = "" }
            else if c != "\r" { field.unicodeScalars.append(c) }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }

    static func exportLines(_ text: String) throws -> [String] {
        try rows(text).dropFirst().map { r in
            guard r.count == 12 else { throw CLIError("CSV row with \(r.count) columns (expected 12)") }
            switch r[0] {
            case "header", "trailer": return r[11]
            case "entry":
                let obj: [String: Any] = ["type": "entry", "seq": Int(r[1]) ?? -1, "org_seq": Int(r[2]) ?? -1, "hash": r[8], "link": r[9],
                                          "proof": r[10].split(separator: " ").map(String.init), "content": r[11]]
                let d = try JSONSerialization.data(withJSONObject: obj)
                return String(decoding: d, as: UTF8.self)
            default: throw CLIError("unknown CSV row type \(r[0])")
            }
        }
    }
}
