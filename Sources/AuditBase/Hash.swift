import CCrypto
import Foundation

/// A SHA-256 digest: a fixed-size value (no heap), compared in constant time.
public struct Hash: Sendable, Hashable, CustomStringConvertible {
    @usableFromInline var w0, w1, w2, w3: UInt64

    /// All zero bytes: the "previous hash" of the first entry of a chain.
    public static let zero = Hash(w0: 0, w1: 0, w2: 0, w3: 0)

    @usableFromInline init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0
        self.w1 = w1
        self.w2 = w2
        self.w3 = w3
    }

    /// A hash from exactly 32 bytes, or nil.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == 32 else { return nil }
        if let h = bytes.withContiguousStorageIfAvailable({ Hash(raw: UnsafeRawBufferPointer($0)) }) {
            self = h
            return
        }
        var ws = [UInt64](repeating: 0, count: 4)
        for (i, b) in bytes.enumerated() { ws[i / 8] |= UInt64(b) << (UInt64(i % 8) * 8) }
        self.init(w0: ws[0], w1: ws[1], w2: ws[2], w3: ws[3])
    }

    /// A hash from the 32 bytes at the start of `raw` (which must hold at least 32).
    @inlinable package init(raw: UnsafeRawBufferPointer) {
        self.init(
            w0: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
            w1: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
            w2: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
            w3: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
    }

    /// A hash from 64 hexadecimal digits, or nil.
    public init?(hex: String) {
        guard let b = [UInt8](hex: hex) else { return nil }
        self.init(bytes: b)
    }

    /// The 32 bytes.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        withBytes { src in out.withUnsafeMutableBytes { $0.copyMemory(from: src) } }
        return out
    }

    /// Calls `body` with the 32 bytes in place.
    @inlinable public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var t = (w0.littleEndian, w1.littleEndian, w2.littleEndian, w3.littleEndian)
        return try withUnsafeBytes(of: &t) { try body($0) }
    }

    /// Lower-case hex.
    public var hex: String { bytes.hex }
    /// Lower-case hex.
    public var description: String { hex }

    /// Constant-time comparison.
    public static func == (a: Hash, b: Hash) -> Bool {
        ((a.w0 ^ b.w0) | (a.w1 ^ b.w1) | (a.w2 ^ b.w2) | (a.w3 ^ b.w3)) == 0
    }

    public func hash(into h: inout Hasher) {
        h.combine(w0)
        h.combine(w1)
    }
}

/// SHA-256 through OpenSSL's block functions (SHA extensions where the CPU has them). Not the
/// one-shot `SHA256()`: in OpenSSL 3 it fetches the digest from the library context on every
/// call, behind a read-write lock, which cost more than hashing a 114-byte link.
public enum SHA256 {
    /// The digest of `count` bytes at `ptr`.
    @inlinable public static func hash(_ ptr: UnsafeRawPointer?, _ count: Int) -> Hash {
        var t: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var c = SHA256_CTX()
        withUnsafeMutableBytes(of: &t) { out in
            _ = SHA256_Init(&c)
            _ = SHA256_Update(&c, ptr, count)
            _ = SHA256_Final(out.baseAddress!.assumingMemoryBound(to: UInt8.self), &c)
        }
        return Hash(
            w0: UInt64(littleEndian: t.0), w1: UInt64(littleEndian: t.1), w2: UInt64(littleEndian: t.2),
            w3: UInt64(littleEndian: t.3))
    }

    /// The digest of `bytes`.
    @inlinable public static func hash<C: Collection>(_ bytes: C) -> Hash where C.Element == UInt8 {
        if let h = bytes.withContiguousStorageIfAvailable({ hash($0.baseAddress, $0.count) }) { return h }
        return Array(bytes).withUnsafeBytes { hash($0.baseAddress, $0.count) }
    }

    /// The digest of the file at `path`, read 1 MiB at a time (a file may be larger than
    /// memory); nil when it does not exist.
    public static func hash(file path: String) throws(AuditError) -> Hash? {
        guard FileOps.exists(path) else { return nil }
        let fd = try FileOps.open(path, O_RDONLY)
        defer { close(fd) }
        let size = try FileOps.size(fd, path: path)
        var c = SHA256_CTX()
        _ = SHA256_Init(&c)
        var at: Int64 = 0
        while at < size {
            let chunk = try FileOps.preadExact(fd, count: Int(min(size - at, 1 << 20)), at: at, path: path)
            chunk.withUnsafeBytes { _ = SHA256_Update(&c, $0.baseAddress, $0.count) }
            at += Int64(chunk.count)
        }
        var t: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &t) { out in
            if let base = out.baseAddress { _ = SHA256_Final(base.assumingMemoryBound(to: UInt8.self), &c) }
        }
        return Hash(
            w0: UInt64(littleEndian: t.0), w1: UInt64(littleEndian: t.1), w2: UInt64(littleEndian: t.2),
            w3: UInt64(littleEndian: t.3))
    }
}
