import AuditBase
import CZstd

/// Thin, non-trapping wrappers over libzstd's one-shot API, each thread with contexts of its
/// own: `ZSTD_compress` and `ZSTD_decompress` make and free one per call, which cost a third
/// of decompressing a 64 KiB block (21 µs against 13 with a kept one, this machine) and more
/// than half of compressing a small one at level 1 (14.5 µs against 6).
public enum Zstd {
    /// A libzstd context, freed with its thread.
    final class Context: @unchecked Sendable {
        let pointer: OpaquePointer
        let free: (OpaquePointer) -> Void

        init?(_ make: () -> OpaquePointer?, free: @escaping (OpaquePointer) -> Void) {
            guard let p = make() else { return nil }
            pointer = p
            self.free = free
        }

        deinit { free(pointer) }
    }

    static let compressors = PerThread { Context(ZSTD_createCCtx, free: { _ = ZSTD_freeCCtx($0) }) }
    static let decompressors = PerThread { Context(ZSTD_createDCtx, free: { _ = ZSTD_freeDCtx($0) }) }

    /// Compresses `input` at `level` (1 fast … 19 small).
    public static func compress(_ input: ArraySlice<UInt8>, level: Int32) throws(ZstdError) -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        var out = [UInt8](repeating: 0, count: bound)
        let context = compressors.value
        let n = input.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                // Without a context of its own (libzstd could not allocate one), the one-shot call.
                context.map { ZSTD_compressCCtx($0.pointer, dst.baseAddress, bound, src.baseAddress, src.count, level) }
                    ?? ZSTD_compress(dst.baseAddress, bound, src.baseAddress, src.count, level)
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
        let context = decompressors.value
        var n = 0
        // Not zeroed first: every byte is written by libzstd, or the result is refused below.
        let out = [UInt8](unsafeUninitializedCapacity: rawSize) { dst, count in
            n = input.withUnsafeBytes { src in
                context.map { ZSTD_decompressDCtx($0.pointer, dst.baseAddress, rawSize, src.baseAddress, src.count) }
                    ?? ZSTD_decompress(dst.baseAddress, rawSize, src.baseAddress, src.count)
            }
            count = ZSTD_isError(n) == 0 && n == rawSize ? rawSize : 0
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
