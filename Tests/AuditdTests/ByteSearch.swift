import CZstd
import Foundation

/// A byte search that sees through compression: whether `needle` is in some bytes as they
/// lie, or in any zstd frame inside them once expanded (a segment's blocks, a bundle's
/// files). A compressed file may hold a value that no raw search finds: zstd writes a repeat
/// of earlier bytes as a reference, so `usr_ann` after `usr_bob` is stored as `usr_` and
/// `ann`.
enum ByteSearch {
    /// Frames expanded at most, and the largest expansion looked at (a test's own files).
    static let maxFrames = 100_000
    static let maxExpanded = 64 << 20

    static func contains(_ needle: String, in data: Data) -> Bool {
        contains(Array(needle.utf8), in: [UInt8](data), depth: 0)
    }

    /// Paths under `dir` (relative) whose bytes hold `needle`.
    static func holding(_ needle: String, under dir: String) -> [String] {
        var out: [String] = []
        let e = FileManager.default.enumerator(atPath: dir)
        while let p = e?.nextObject() as? String {
            if let d = FileManager.default.contents(atPath: dir + "/" + p), contains(needle, in: d) { out.append(p) }
        }
        return out
    }

    private static func contains(_ needle: [UInt8], in bytes: [UInt8], depth: Int) -> Bool {
        if find(needle, in: bytes[...]) { return true }
        guard depth < 2 else { return false }
        for frame in frames(in: bytes) where contains(needle, in: frame, depth: depth + 1) { return true }
        return false
    }

    private static func find(_ needle: [UInt8], in hay: ArraySlice<UInt8>) -> Bool {
        guard !needle.isEmpty, hay.count >= needle.count else { return false }
        var i = hay.startIndex
        while i <= hay.endIndex - needle.count {
            if hay[i] == needle[0], hay[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }

    /// Every zstd frame in `bytes` (found by its magic number), expanded.
    static func frames(in bytes: [UInt8]) -> [[UInt8]] {
        let magic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]
        var out: [[UInt8]] = []
        var i = 0
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            while i + 4 <= raw.count, out.count < maxFrames {
                guard raw[i] == magic[0], raw[i + 1] == magic[1], raw[i + 2] == magic[2], raw[i + 3] == magic[3]
                else {
                    i += 1
                    continue
                }
                let p = base + i
                let size = ZSTD_findFrameCompressedSize(p, raw.count - i)
                let content = ZSTD_getFrameContentSize(p, raw.count - i)
                guard ZSTD_isError(size) == 0, content <= UInt64(maxExpanded) else {
                    i += 1
                    continue
                }
                var expanded = [UInt8](repeating: 0, count: Int(content))
                let n = expanded.withUnsafeMutableBytes { ZSTD_decompress($0.baseAddress, $0.count, p, size) }
                if ZSTD_isError(n) == 0 {
                    out.append(Array(expanded.prefix(n)))
                    i += size
                } else {
                    i += 1
                }
            }
        }
        return out
    }
}
