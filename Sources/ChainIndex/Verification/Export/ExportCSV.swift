import Foundation

/// RFC 4180 parsing of CSV exports (format-spec.md §9.3), turned back into the NDJSON lines
/// `ExportVerifier` reads. Never traps: any input gives lines or a `Failure`.
public enum ExportCSV {
    /// A CSV export that cannot be read as one.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// In words, with the row number.
        public var description: String
    }

    /// Splits `text` into rows of fields (quotes, doubled quotes, CRLF or LF line ends).
    public static func rows(_ text: String) -> [[String]] {
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

    /// The export's rows after the column line, as NDJSON lines.
    public static func lines(_ text: String) throws(Failure) -> [String] {
        var out: [String] = []
        for (i, r) in rows(text).dropFirst().enumerated() {
            guard r.count == 12 else { throw Failure(description: "CSV row \(i + 2) has \(r.count) columns (expected 12)") }
            switch r[0] {
            case "header", "trailer": out.append(r[11])
            case "entry":
                let obj: [String: Any] = ["type": "entry", "seq": Int(r[1]) ?? -1, "org_seq": Int(r[2]) ?? -1, "hash": r[8], "link": r[9],
                                          "proof": r[10].split(separator: " ").map(String.init), "content": r[11]]
                guard let d = try? JSONSerialization.data(withJSONObject: obj) else {
                    throw Failure(description: "CSV row \(i + 2) cannot be read as an entry")
                }
                out.append(String(decoding: d, as: UTF8.self))
            default: throw Failure(description: "CSV row \(i + 2) has unknown type \(r[0])")
            }
        }
        return out
    }
}
