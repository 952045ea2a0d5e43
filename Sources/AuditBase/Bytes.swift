#if canImport(Glibc)
import Glibc
#endif

/// Little-endian byte building and bounds-checked parsing, shared by every on-disk codec.
///
/// `ByteReader` never traps: every read checks the remaining length first and throws
/// `ByteReader.Short` when the input ends early.
public struct ByteWriter: Sendable {
    /// The bytes written so far.
    public var bytes: [UInt8]

    /// A writer with room reserved for `capacity` bytes.
    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Appends raw bytes.
    @inlinable public mutating func write<C: Collection>(_ b: C) where C.Element == UInt8 {
        bytes.append(contentsOf: b)
    }
    /// Appends one byte.
    @inlinable public mutating func write(_ v: UInt8) { bytes.append(v) }
    /// Appends a 16-bit little-endian integer.
    @inlinable public mutating func write(_ v: UInt16) { writeLE(UInt64(v), 2) }
    /// Appends a 32-bit little-endian integer.
    @inlinable public mutating func write(_ v: UInt32) { writeLE(UInt64(v), 4) }
    /// Appends a 64-bit little-endian integer.
    @inlinable public mutating func write(_ v: UInt64) { writeLE(v, 8) }
    /// Appends a 64-bit big-endian integer (used where a standard asks for network order).
    @inlinable public mutating func writeBE(_ v: UInt64) {
        for i in (0..<8).reversed() { bytes.append(UInt8(truncatingIfNeeded: v >> (UInt64(i) * 8))) }
    }
    @inlinable mutating func writeLE(_ v: UInt64, _ n: Int) {
        for i in 0..<n { bytes.append(UInt8(truncatingIfNeeded: v >> (UInt64(i) * 8))) }
    }
    /// Appends an unsigned LEB128 varint.
    @inlinable public mutating func writeVarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
    /// How many bytes `writeVarint(v)` appends.
    @inlinable public static func varintCount(_ v: UInt64) -> Int {
        (64 - v.leadingZeroBitCount + 6) / 7 + (v == 0 ? 1 : 0)
    }
    /// Appends a signed integer as a zig-zag varint.
    @inlinable public mutating func writeSignedVarint(_ v: Int64) {
        writeVarint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }
}

/// A bounds-checked cursor over bytes.
public struct ByteReader: Sendable {
    /// Thrown when the input ends before a value is complete, or a varint is malformed.
    public struct Short: Error, Sendable {
        /// Offset at which the read failed.
        public var offset: Int
    }

    /// The bytes being read.
    public let bytes: [UInt8]
    /// The next offset to read.
    public private(set) var offset: Int
    private let end: Int

    /// A reader over `bytes[range]` (the whole array by default).
    public init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        self.bytes = bytes
        // Within the array, always: the fixed-size reads load from it without a check per byte.
        let r = (range ?? 0..<bytes.count).clamped(to: 0..<bytes.count)
        offset = r.lowerBound
        end = r.upperBound
    }

    /// Bytes left to read.
    public var remaining: Int { end - offset }
    /// True when every byte has been read.
    public var isAtEnd: Bool { offset >= end }

    /// Reads `n` bytes.
    public mutating func read(count n: Int) throws(Short) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw Short(offset: offset) }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }
    /// Skips `n` bytes.
    public mutating func skip(_ n: Int) throws(Short) {
        guard n >= 0, n <= remaining else { throw Short(offset: offset) }
        offset += n
    }
    /// Reads one byte.
    public mutating func readU8() throws(Short) -> UInt8 {
        guard remaining >= 1 else { throw Short(offset: offset) }
        defer { offset += 1 }
        return bytes[offset]
    }
    /// Reads a 16-bit little-endian integer.
    public mutating func readU16() throws(Short) -> UInt16 { UInt16(try readLE(2)) }
    /// Reads a 32-bit little-endian integer.
    public mutating func readU32() throws(Short) -> UInt32 { UInt32(try readLE(4)) }
    /// Reads a 64-bit little-endian integer.
    public mutating func readU64() throws(Short) -> UInt64 { try readLE(8) }
    /// Reads a 64-bit big-endian integer.
    public mutating func readU64BE() throws(Short) -> UInt64 {
        guard remaining >= 8 else { throw Short(offset: offset) }
        var v: UInt64 = 0
        for i in 0..<8 { v = (v << 8) | UInt64(bytes[offset + i]) }
        offset += 8
        return v
    }
    private mutating func readLE(_ n: Int) throws(Short) -> UInt64 {
        guard remaining >= n else { throw Short(offset: offset) }
        let at = offset
        offset += n
        // One load for the common widths (a segment's map is a few hundred thousand of them).
        return bytes.withUnsafeBytes { raw in
            switch n {
            case 8: return UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))
            case 4: return UInt64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
            default:
                var v: UInt64 = 0
                for i in 0..<n { v |= UInt64(raw[at + i]) << (UInt64(i) * 8) }
                return v
            }
        }
    }
    /// Reads an unsigned LEB128 varint of at most ten bytes.
    public mutating func readVarint() throws(Short) -> UInt64 {
        var at = offset
        let v = bytes.withUnsafeBufferPointer { Self.varint($0, at: &at, end: end) }
        guard let v else { throw Short(offset: at) }
        offset = at
        return v
    }

    /// The unsigned LEB128 varint at `at` in `bytes[..<end]`, `at` moved past it; nil (`at`
    /// where it failed) when it runs past `end` or does not fit 64 bits. For readers of bytes
    /// in place (a verifier's records in their decompressed block).
    @inline(__always)
    public static func varint(_ bytes: UnsafeBufferPointer<UInt8>, at: inout Int, end: Int) -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let end = min(end, bytes.count)
        while true {
            guard at >= 0, at < end, shift < 64 else { return nil }
            let b = bytes[at]
            // The tenth byte holds only bit 63: anything more would overflow 64 bits.
            guard shift < 63 || b <= 1 else { return nil }
            at += 1
            result |= UInt64(b & 0x7f) << shift
            if b < 0x80 { return result }
            shift += 7
        }
    }
    /// Reads a zig-zag varint.
    public mutating func readSignedVarint() throws(Short) -> Int64 {
        let u = try readVarint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }
}

extension Array where Element == UInt8 {
    /// True when `needle` occurs in these bytes (glibc's memmem, a vectorised search; a plain
    /// scan where it is missing). An empty needle occurs everywhere.
    public func contains(bytes needle: [UInt8]) -> Bool {
        withUnsafeBytes { h in needle.withUnsafeBytes { n in ByteSearch.contains(h, n) } }
    }

    /// Lower-case hexadecimal.
    public var hex: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        for b in self {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses lower- or upper-case hexadecimal; nil for anything else.
    public init?(hex: String) {
        let u = [UInt8](hex.utf8)
        guard u.count % 2 == 0 else { return nil }
        func nib(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            case 65...70: return c - 55
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let h = nib(u[i]), let l = nib(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        self = out
    }
}

/// Finding bytes in bytes: glibc's memmem(3), which Swift does not import (a GNU extension).
public enum ByteSearch {
    typealias MemMem = @convention(c) (UnsafeRawPointer?, Int, UnsafeRawPointer?, Int) -> UnsafeMutableRawPointer?
    static let memmem: MemMem? = {
        #if canImport(Glibc)
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "memmem") else { return nil }
        return unsafeBitCast(sym, to: MemMem.self)
        #else
        return nil
        #endif
    }()

    /// True when `needle` occurs in `hay`; an empty needle occurs everywhere.
    public static func contains(_ hay: UnsafeRawBufferPointer, _ needle: UnsafeRawBufferPointer) -> Bool {
        guard !needle.isEmpty else { return true }
        guard needle.count <= hay.count, let h = hay.baseAddress, let n = needle.baseAddress else { return false }
        if let memmem { return memmem(h, hay.count, n, needle.count) != nil }
        for i in 0...(hay.count - needle.count) where memcmp(h + i, n, needle.count) == 0 { return true }
        return false
    }
}

extension ByteSearch {
    /// Eight bytes a step: the index of the first byte in `p[from..<end]` whose high bit
    /// `marks` sets in its word (the lowest mark must be exact), the last few bytes one at a
    /// time by `stops`; or `end`. The one loop of the searches below.
    @inlinable @inline(__always)
    static func firstMarked(
        _ p: UnsafePointer<UInt8>, from: Int, end: Int, marks: (UInt64) -> UInt64, stops: (UInt8) -> Bool
    ) -> Int {
        let raw = UnsafeRawPointer(p)
        var i = from
        while end - i >= 8 {
            let m = marks(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
            if m != 0 { return i + m.trailingZeroBitCount >> 3 }
            i += 8
        }
        while i < end, !stops(p[i]) { i += 1 }
        return i
    }

    /// The high bit of each byte of `w` that is zero (a borrow can mark bytes above a true
    /// zero, never below one, so the lowest mark is exact).
    @inlinable @inline(__always)
    static func zeroBytes(_ w: UInt64) -> UInt64 { (w &- 0x0101_0101_0101_0101) & ~w & 0x8080_8080_8080_8080 }

    /// The index of the first `"` or `\` in `p[from..<end]`, or `end`: where a JSON string's
    /// contents stop being plain. Eight bytes a step (each byte compared with both at once, the
    /// lowest match exact), inline: two memchr(3) calls a string cost more than the search in
    /// the short keys and values of an entry.
    @inlinable @inline(__always)
    public static func quoteOrBackslash(_ p: UnsafePointer<UInt8>, from: Int, end: Int) -> Int {
        firstMarked(
            p, from: from, end: end,
            marks: { w in zeroBytes(w ^ 0x2222_2222_2222_2222) | zeroBytes(w ^ 0x5C5C_5C5C_5C5C_5C5C) },
            stops: { $0 == 0x22 || $0 == 0x5C })
    }

    /// The index of the first byte in `p[from..<end]` that a plain, printable ASCII JSON
    /// string cannot hold as it is (`"`, `\`, a control byte below 0x20, or 0x7F and above),
    /// or `end`: where an ingested string's contents stop being ones the hot path copies
    /// whole. Eight bytes a step, like `quoteOrBackslash`.
    @inlinable @inline(__always)
    public static func plainASCIIEnd(_ p: UnsafePointer<UInt8>, from: Int, end: Int) -> Int {
        firstMarked(
            p, from: from, end: end,
            marks: { w in
                // Bytes below 0x20 (w - 0x20 borrows there) and from 0x80 (their high bit) too;
                // borrows mark only bytes above a true mark.
                zeroBytes(w ^ 0x2222_2222_2222_2222) | zeroBytes(w ^ 0x5C5C_5C5C_5C5C_5C5C)
                    | zeroBytes(w ^ 0x7F7F_7F7F_7F7F_7F7F) | ((w &- 0x2020_2020_2020_2020) & ~w & 0x8080_8080_8080_8080)
                    | (w & 0x8080_8080_8080_8080)
            },
            stops: { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 || $0 >= 0x7F })
    }
}
