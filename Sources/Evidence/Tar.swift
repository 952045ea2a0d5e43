import AuditBase
import Foundation

/// The pack as one file (format-spec.md §9.5): a POSIX ustar archive of plain files in one
/// folder, which `tar -xf` unpacks anywhere.
public enum Tar {
    /// Why an archive was refused.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The 512-byte header of a regular file `name` (at most 100 bytes, no `/`) of `size` bytes.
    public static func header(name: String, size: Int, mtime: Int = 0) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ at: Int, _ len: Int) {
            for (i, b) in s.utf8.prefix(len).enumerated() { h[at + i] = b }
        }
        func octal(_ v: Int, _ at: Int, _ len: Int) {
            let s = String(v, radix: 8)
            put(String(repeating: "0", count: max(0, len - 1 - s.count)) + s, at, len - 1)
        }
        put(name, 0, 100)
        octal(0o644, 100, 8)
        octal(0, 108, 8)
        octal(0, 116, 8)
        octal(size, 124, 12)
        octal(mtime, 136, 12)
        put("        ", 148, 8)
        h[156] = UInt8(ascii: "0")
        put("ustar", 257, 6)
        put("00", 263, 2)
        let sum = h.reduce(0) { $0 + Int($1) }
        octal(sum, 148, 7)
        h[154] = 0
        h[155] = 0x20
        return h
    }

    /// Zeros that pad `size` bytes of content to a 512-byte boundary.
    public static func padding(_ size: Int) -> [UInt8] { [UInt8](repeating: 0, count: (512 - size % 512) % 512) }

    /// The two zero blocks that end an archive.
    public static let end = [UInt8](repeating: 0, count: 1024)

    /// Unpacks the archive at `path` into directory `dir` (created): its regular files only,
    /// each named by a plain name (no `/`, not `.` or `..`), at most `maxFiles` of them and
    /// `maxBytes` in all. Returns their names.
    public static func extract(
        _ path: String, into dir: String, maxFiles: Int = 64, maxBytes: Int = 8 << 30
    ) throws
        -> [String]
    {
        guard let f = FileHandle(forReadingAtPath: path) else { throw Failure(description: "cannot read \(path)") }
        defer { try? f.close() }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var names: [String] = []
        var total = 0
        while true {
            guard let h = try f.read(upToCount: 512), h.count == 512 else {
                throw Failure(description: "\(path) ends inside a header: it is cut short")
            }
            let head = Array(h)
            if head.allSatisfy({ $0 == 0 }) { break }
            let name = String(decoding: head[0..<100].prefix { $0 != 0 }, as: UTF8.self)
            let sizeText = String(decoding: head[124..<136].prefix { $0 != 0 && $0 != 0x20 }, as: UTF8.self)
            guard let size = Int(sizeText, radix: 8), size >= 0 else {
                throw Failure(description: "\(path): the size of \(name.prefix(100)) is not an octal number")
            }
            let stored =
                head[0..<148].reduce(0) { $0 + Int($1) } + 8 * 0x20 + head[156..<512].reduce(0) { $0 + Int($1) }
            let sumText = String(decoding: head[148..<156].prefix { $0 != 0 && $0 != 0x20 }, as: UTF8.self)
            guard Int(sumText, radix: 8) == stored else {
                throw Failure(description: "\(path): the header of \(name.prefix(100)) fails its checksum")
            }
            guard head[156] == UInt8(ascii: "0") || head[156] == 0, !name.isEmpty, !name.contains("/"), name != ".",
                name != ".."
            else {
                throw Failure(description: "\(path): \(name.prefix(100)) is not a plain file name of the pack")
            }
            total += size
            names.append(name)
            guard names.count <= maxFiles, total <= maxBytes else {
                throw Failure(description: "\(path) holds more than \(maxFiles) files or \(maxBytes) bytes")
            }
            FileManager.default.createFile(atPath: dir + "/" + name, contents: nil)
            guard let out = FileHandle(forWritingAtPath: dir + "/" + name) else {
                throw Failure(description: "cannot write \(dir)/\(name)")
            }
            defer { try? out.close() }
            var left = size
            while left > 0 {
                guard let chunk = try f.read(upToCount: min(left, 1 << 20)), !chunk.isEmpty else {
                    throw Failure(description: "\(path) ends inside \(name): it is cut short")
                }
                try out.write(contentsOf: chunk)
                left -= chunk.count
            }
            let pad = (512 - size % 512) % 512
            if pad > 0 { _ = try f.read(upToCount: pad) }
        }
        return names
    }
}
