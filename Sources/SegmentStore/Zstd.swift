import CZstd

/// Thin, non-trapping wrappers over libzstd's one-shot API.
public enum Zstd {
    /// Compresses `input` at `level` (1 fast … 19 small).
    public static func compress(_ input: ArraySlice<UInt8>, level: Int32) throws(ZstdError) -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = input.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                ZSTD_compress(dst.baseAddress, bound, src.baseAddress, src.count, level)
            }
        }
        if ZSTD_isError(n) != 0 { throw ZstdError(message: String(cString: ZSTD_getErrorName(n))) }
        out.removeSubrange(n...)
        return out
    }

    /// Decompresses `input`, which must expand to exactly `rawSize` bytes.
    public static func decompress(_ input: ArraySlice<UInt8>, rawSize: Int) throws(ZstdError) -> [UInt8] {
        guard rawSize >= 0, rawSize <= SegmentFormat.maxBlockRawSize else {
            throw ZstdError(message: "declared size \(rawSize) is out of range")
        }
        var out = [UInt8](repeating: 0, count: rawSize)
        let n = input.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                ZSTD_decompress(dst.baseAddress, rawSize, src.baseAddress, src.count)
            }
        }
        if ZSTD_isError(n) != 0 { throw ZstdError(message: String(cString: ZSTD_getErrorName(n))) }
        guard n == rawSize else { throw ZstdError(message: "expanded to \(n) bytes, header says \(rawSize)") }
        return out
    }
}

/// A libzstd failure, with libzstd's own description.
public struct ZstdError: Error, Sendable {
    /// What libzstd said.
    public var message: String
}
