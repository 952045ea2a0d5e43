import AuditEntries
import AuditIndex
import Foundation

/// RFC 4180 parsing of CSV exports (format-spec.md §9.3), turned back into the NDJSON lines
/// `ExportVerifier` reads, after checking every readable column against the entry's content.
/// Never traps: any input gives lines or a `Failure`.
public enum ExportCSV {
    /// A CSV export that cannot be read as one.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// In words, with the row number.
        public var description: String
    }

    /// Splits `text` into rows of fields (quotes, doubled quotes, CRLF or LF line ends).
    public static func rows(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var inQuotes = false
        var it = Array(text.unicodeScalars)[...]
        while let c = it.popFirst() {
            if inQuotes {
                if c == "\"" {
                    if it.first == "\"" {
                        field.unicodeScalars.append("\"")
                        it = it.dropFirst()
                    } else {
                        inQuotes = false
                    }
                } else {
                    field.unicodeScalars.append(c)
                }
            } else if c == "\"" {
                inQuotes = true
            } else if c == "," {
                row.append(field)
                field = ""
            } else if c == "\n" {
                row.append(field)
                rows.append(row)
                row = []
                field = ""
            } else if c != "\r" {
                field.unicodeScalars.append(c)
            }
        }
        if !field.isEmpty || !row.isEmpty {
            row.append(field)
            rows.append(row)
        }
        return rows
    }

    /// The export's rows after the column line, as NDJSON lines.
    public static func lines(_ text: String) throws(Failure) -> [String] {
        try rows(text).dropFirst().enumerated().map { (i, r) throws(Failure) in try line(r, row: i + 2) }
    }

    /// One row as an NDJSON line, its readable columns checked against its content.
    public static func line(_ r: [String], row: Int) throws(Failure) -> String {
        // 13 columns since personal fields (§5.4.4); 12 before.
        guard r.count == 12 || r.count == 13 else {
            throw Failure(description: "CSV row \(row) has \(r.count) columns (expected 13)")
        }
        switch r[0] {
        case "header", "trailer": return r[11]
        case "entry", "context":
            let signed = CSVColumns(content: Array(r[11].utf8))
            let shown = CSVColumns(row: r)
            for (name, a, b) in [
                ("received_at", shown.receivedAt, signed.receivedAt), ("category", shown.category, signed.category),
                ("action", shown.action, signed.action), ("actor", shown.actor, signed.actor),
                ("outcome", shown.outcome, signed.outcome),
            ]
            where a != b {
                throw Failure(
                    description:
                        "CSV row \(row) (seq \(r[1].prefix(20))): column \(name) says '\(a.prefix(80))' but the entry's signed content says '\(b.prefix(80))'"
                )
            }
            var obj: [String: Any] = [
                "type": r[0], "seq": Int(r[1]) ?? -1, "org_seq": Int(r[2]) ?? -1, "hash": r[8], "link": r[9],
                "gap": r[10].split(separator: " ").map(String.init),
            ]
            var personal: Any?
            if r.count == 13, !r[12].isEmpty {
                guard let p = try? JSONSerialization.jsonObject(with: Data(r[12].utf8)) else {
                    throw Failure(description: "CSV row \(row): column personal is not a JSON object")
                }
                personal = p
            }
            // A withheld entry (§5.4.3): no content, `{"withheld":{…}}` in the 13th column.
            if r[11].isEmpty, let p = personal as? [String: Any], p.count == 1, let w = p["withheld"] {
                obj["withheld"] = w
            } else {
                obj["content"] = r[11]
                obj["personal"] = personal
            }
            guard let d = try? JSONSerialization.data(withJSONObject: obj) else {
                throw Failure(description: "CSV row \(row) cannot be read as an entry")
            }
            return String(decoding: d, as: UTF8.self)
        default: throw Failure(description: "CSV row \(row) has unknown type \(r[0].prefix(40))")
        }
    }
}
