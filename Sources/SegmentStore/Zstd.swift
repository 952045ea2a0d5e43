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

    /// Compresses `input` at `level` (1 fast … 19 small), or at the level and with the
    /// dictionary of `encoder`.
    public static func compress(
        _ input: ArraySlice<UInt8>, level: Int32, encoder: ZstdDictionary.Encoder? = nil
    ) throws(ZstdError) -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        var out = [UInt8](repeating: 0, count: bound)
        let context = compressors.value
        let n = input.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                if let encoder {
                    guard let context else { return ZstdDictionary.noContext }
                    return ZSTD_compress_usingCDict(
                        context.pointer, dst.baseAddress, bound, src.baseAddress, src.count, encoder.pointer)
                }
                guard let context else {
                    // Without a context of its own (libzstd could not allocate one), the one-shot call.
                    return ZSTD_compress(dst.baseAddress, bound, src.baseAddress, src.count, level)
                }
                guard let tuned = tuned(ZSTD_getCParams(level, UInt64(src.count), 0)) else {
                    return ZSTD_compressCCtx(context.pointer, dst.baseAddress, bound, src.baseAddress, src.count, level)
                }
                // The level with `tuned`'s two parameters, set afresh on every call (the one-shot
                // calls above ignore what is set here).
                let c = context.pointer
                defer { _ = ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters) }
                for (parameter, value) in [
                    (ZSTD_c_compressionLevel, level), (ZSTD_c_searchLog, Int32(tuned.searchLog)),
                    (ZSTD_c_minMatch, Int32(tuned.minMatch)),
                ] {
                    let r = ZSTD_CCtx_setParameter(c, parameter, value)
                    if ZSTD_isError(r) != 0 { return r }
                }
                return ZSTD_compress2(c, dst.baseAddress, bound, src.baseAddress, src.count)
            }
        }
        if ZSTD_isError(n) != 0 { throw ZstdError(message: String(cString: ZSTD_getErrorName(n))) }
        out.removeSubrange(n...)
        return out
    }

    /// libzstd's parameters `p` as the log changes them (nil: unchanged). Where the match
    /// finder is the row-based one (greedy, lazy, lazy2: levels 5-10 for blocks of 64 KiB), it
    /// looks at 32 candidates or more and keeps no match shorter than 5 bytes: audit JSON
    /// repeats its keys and values in runs longer than that. On the workload's sealed segments
    /// (`auditbench seal-levels --levels 5,6 --libzstd`, 2026-12-06), level 5 so tuned keeps
    /// fewer bytes than libzstd's own level 6 in less time (0.0915 of raw at 176.5 MB/s against
    /// 0.0921 at 144.2; with personal fields committed, 0.1878 at 148.2 MB/s against 0.1876 at
    /// 132.1), and each tuned level keeps fewer bytes than the same level untuned. A reader
    /// needs nothing of it: any zstd frame expands the same way.
    static func tuned(_ p: ZSTD_compressionParameters) -> ZSTD_compressionParameters? {
        guard p.strategy == ZSTD_greedy || p.strategy == ZSTD_lazy || p.strategy == ZSTD_lazy2 else { return nil }
        var t = p
        t.searchLog = max(p.searchLog, 5)
        t.minMatch = max(p.minMatch, 5)
        return t
    }

    /// `input` as a zstd frame of raw blocks (RFC 8878 §3.1.1), nothing compressed: what any
    /// zstd decoder expands back to `input`. For a block too small to gain from compression,
    /// whose context setup cost more than the bytes it saved (format-spec.md §2.2).
    public static func stored(_ input: ArraySlice<UInt8>) -> [UInt8] {
        let blockMax = 128 << 10
        let blocks = max(1, (input.count + blockMax - 1) / blockMax)
        // Single segment (no window descriptor; the window is the content size), content size
        // in 1, 2 (less 256), 4 or 8 bytes, no checksum, no dictionary.
        let sizeBytes: Int
        let flag: UInt8
        switch input.count {
        case ..<256: (sizeBytes, flag) = (1, 0)
        case ..<(65_536 + 256): (sizeBytes, flag) = (2, 1)
        case ...Int(UInt32.max): (sizeBytes, flag) = (4, 2)
        default: (sizeBytes, flag) = (8, 3)
        }
        var out = [UInt8]()
        out.reserveCapacity(5 + sizeBytes + 3 * blocks + input.count)
        out.append(contentsOf: [0x28, 0xB5, 0x2F, 0xFD, flag << 6 | 0x20])
        let size = UInt64(input.count) - (flag == 1 ? 256 : 0)
        for i in 0..<sizeBytes { out.append(UInt8(truncatingIfNeeded: size >> (8 * UInt64(i)))) }
        var at = input.startIndex
        for b in 0..<blocks {
            let n = min(blockMax, input.endIndex - at)
            // Block header: last-block bit, type 0 (raw), size; little-endian, 3 bytes.
            let header = UInt32(n) << 3 | (b == blocks - 1 ? 1 : 0)
            out.append(contentsOf: [UInt8(header & 0xFF), UInt8(header >> 8 & 0xFF), UInt8(header >> 16)])
            out.append(contentsOf: input[at..<at + n])
            at += n
        }
        return out
    }

    /// Decompresses `input`, which must expand to exactly `rawSize` bytes (with `dictionary`
    /// when it was compressed with one).
    public static func decompress(
        _ input: ArraySlice<UInt8>, rawSize: Int, dictionary: ZstdDictionary? = nil
    ) throws(ZstdError) -> [UInt8] {
        guard rawSize >= 0, rawSize <= SegmentFormat.maxBlockRawSize else {
            throw ZstdError(message: "declared size \(rawSize) is out of range")
        }
        let context = decompressors.value
        var n = 0
        // Not zeroed first: every byte is written by libzstd, or the result is refused below.
        let out = [UInt8](unsafeUninitializedCapacity: rawSize) { dst, count in
            n = input.withUnsafeBytes { src in
                if let dictionary {
                    guard let context else { return ZstdDictionary.noContext }
                    return ZSTD_decompress_usingDDict(
                        context.pointer, dst.baseAddress, rawSize, src.baseAddress, src.count, dictionary.decoder)
                }
                return context.map {
                    ZSTD_decompressDCtx($0.pointer, dst.baseAddress, rawSize, src.baseAddress, src.count)
                }
                    ?? ZSTD_decompress(dst.baseAddress, rawSize, src.baseAddress, src.count)
            }
            count = ZSTD_isError(n) == 0 && n == rawSize ? rawSize : 0
        }
        if ZSTD_isError(n) != 0 { throw ZstdError(message: String(cString: ZSTD_getErrorName(n))) }
        guard n == rawSize else { throw ZstdError(message: "expanded to \(n) bytes, header says \(rawSize)") }
        return out
    }
}

/// A dictionary trained on a sealed segment's own records (format-spec.md §2.4): every block
/// of the segment is compressed with it, which a block of 64 KiB, compressed alone, cannot
/// learn from its neighbours (about a fifth fewer bytes on the workload's events).
public final class ZstdDictionary: @unchecked Sendable {
    /// The dictionary's bytes, as the footer stores them.
    public let bytes: [UInt8]
    let decoder: OpaquePointer

    /// libzstd's result for "memory allocation failed" (`ZSTD_error_memory_allocation`, as a
    /// `size_t` error code), given when a thread has no context for a dictionary call.
    static let noContext = -Int(ZSTD_error_memory_allocation.rawValue)

    /// A dictionary for decompressing; nil when libzstd cannot allocate one.
    public init?(bytes: [UInt8]) {
        guard !bytes.isEmpty, let d = bytes.withUnsafeBytes({ ZSTD_createDDict($0.baseAddress, $0.count) })
        else { return nil }
        self.bytes = bytes
        decoder = d
    }

    deinit { ZSTD_freeDDict(decoder) }

    /// The dictionary made ready to compress at one level.
    public final class Encoder: @unchecked Sendable {
        let pointer: OpaquePointer

        fileprivate init?(_ bytes: [UInt8], level: Int32, tuned: Bool) {
            let own = ZSTD_getCParams(level, 0, bytes.count)
            let parameters = tuned ? Zstd.tuned(own) ?? own : own
            guard
                let p = bytes.withUnsafeBytes({
                    ZSTD_createCDict_advanced(
                        $0.baseAddress, $0.count, ZSTD_dlm_byCopy, ZSTD_dct_auto, parameters,
                        ZSTD_customMem(customAlloc: nil, customFree: nil, opaque: nil))
                })
            else { return nil }
            pointer = p
        }

        deinit { ZSTD_freeCDict(pointer) }
    }

    /// This dictionary, ready to compress at `level` (with `Zstd.tuned`'s parameters, or with
    /// libzstd's own when not `tuned`: for comparing them); nil when libzstd cannot allocate it.
    public func encoder(level: Int32, tuned: Bool = true) -> Encoder? { Encoder(bytes, level: level, tuned: tuned) }

    /// A dictionary of at most `capacity` bytes trained on `samples` (libzstd's fastCover
    /// trainer: deterministic for the same samples), or nil when they are too few or too
    /// small to train one (libzstd's own judgement), which then means: no dictionary.
    public static func train(samples: [ArraySlice<UInt8>], capacity: Int) -> ZstdDictionary? {
        var flat: [UInt8] = []
        flat.reserveCapacity(samples.reduce(0) { $0 + $1.count })
        var sizes: [Int] = []
        sizes.reserveCapacity(samples.count)
        for s in samples where !s.isEmpty {
            flat.append(contentsOf: s)
            sizes.append(s.count)
        }
        guard capacity > 0, sizes.count >= 8 else { return nil }
        var out = [UInt8](repeating: 0, count: capacity)
        let n = out.withUnsafeMutableBytes { dst in
            flat.withUnsafeBytes { src in
                ZDICT_trainFromBuffer(dst.baseAddress, capacity, src.baseAddress, sizes, UInt32(sizes.count))
            }
        }
        guard ZDICT_isError(n) == 0, n > 0, n <= capacity else { return nil }
        out.removeSubrange(n...)
        return ZstdDictionary(bytes: out)
    }
}

/// A libzstd failure, with libzstd's own description.
public struct ZstdError: Error, Sendable {
    /// What libzstd said.
    public var message: String
}
