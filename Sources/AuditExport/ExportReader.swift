import AuditEntries
import AuditIndex
import Foundation

/// Reads an export a piece at a time (an export can be larger than memory): NDJSON lines, or
/// CSV rows turned into the same lines (`ExportCSV`). The format is told by the first bytes.
public final class ExportReader: Sequence, IteratorProtocol {
    /// `ndjson` or `csv`.
    public private(set) var format = "ndjson"
    /// Why reading stopped early (an I/O error or a malformed CSV row), if it did.
    public private(set) var failure: String?

    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var start = 0
    private var eof = false
    private var row = 1

    /// Opens `path` (`-` for standard input).
    public init(path: String) throws {
        if path == "-" {
            handle = .standardInput
        } else {
            guard let h = FileHandle(forReadingAtPath: path) else {
                throw ExportCSV.Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))")
            }
            handle = h
        }
        // Files before personal fields end their column line at `content`: the prefix names both.
        let columns = Array(ExportFormat.csvColumns.utf8.prefix { $0 != 0x0A }).split(separator: 0x2C).dropLast()
            .joined(separator: [0x2C])
        _ = fill(until: ExportFormat.csvColumns.utf8.count + 1)
        if buffer.starts(with: Array(columns)) {
            format = "csv"
            _ = physicalLine()
        }
    }

    /// Reads until `n` bytes are buffered past `start` or the input ends.
    private func fill(until n: Int) -> Bool {
        while buffer.count - start < n && !eof {
            do {
                guard let d = try handle.read(upToCount: 1 << 20), !d.isEmpty else {
                    eof = true
                    break
                }
                if start > 0 {
                    buffer.removeFirst(start)
                    start = 0
                }
                buffer.append(contentsOf: d)
            } catch {
                failure = "read error: \(error)"
                eof = true
            }
        }
        return buffer.count - start >= n
    }

    /// The next line without its LF, or nil at the end.
    private func physicalLine() -> String? {
        var scanned = start
        while true {
            if let nl = buffer[scanned...].firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[start..<nl], as: UTF8.self)
                start = nl + 1
                return line
            }
            scanned = buffer.count
            let had = buffer.count - start
            if eof || !fill(until: had + 1) {
                guard start < buffer.count else { return nil }
                let line = String(decoding: buffer[start...], as: UTF8.self)
                start = buffer.count
                return line
            }
            scanned = start + had
        }
    }

    /// The next NDJSON line (for CSV: the next row, checked and converted).
    public func next() -> String? {
        guard failure == nil else { return nil }
        if format == "ndjson" { return physicalLine() }
        guard var text = physicalLine() else { return nil }
        // A quoted field may hold line breaks: a row ends where its quotes are balanced.
        while text.utf8.reduce(0, { $0 + ($1 == 0x22 ? 1 : 0) }) % 2 == 1 {
            guard let more = physicalLine() else { break }
            text += "\n" + more
        }
        row += 1
        if text.hasSuffix("\r") { text.removeLast() }
        if text.isEmpty { return "" }
        do { return try ExportCSV.line(ExportCSV.rows(text).first ?? [], row: row) } catch {
            failure = error.description
            return nil
        }
    }
}
