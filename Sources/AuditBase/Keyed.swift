import CCrypto
import Foundation

/// AES-256-CTR (NIST SP 800-38A) through OpenSSL: the personal store's row encryption, with the
/// CPU's AES instructions. The cipher is fetched once; each call sets up its key schedule
/// (a few tens of nanoseconds) and encrypts in one pass, with no allocation but the output.
public enum AESCTR {
    nonisolated(unsafe) private static let cipher: OpaquePointer? = EVP_CIPHER_fetch(nil, "AES-256-CTR", nil)

    /// A context set up for the cipher: setting only a key and an iv on one costs a fraction
    /// of setting one up (OpenSSL 3 looks the cipher's parameters up each time).
    final class Context {
        let ctx: OpaquePointer
        init?() {
            guard let cipher, let c = EVP_CIPHER_CTX_new() else { return nil }
            guard EVP_EncryptInit_ex(c, cipher, nil, nil, nil) == 1 else {
                EVP_CIPHER_CTX_free(c)
                return nil
            }
            ctx = c
        }
        deinit { EVP_CIPHER_CTX_free(ctx) }
    }
    /// One per thread: rows are sealed on every event loop at once.
    static let contexts = PerThread { Context() }

    /// `data` XOR the AES-256-CTR key stream of `key` (32 bytes) from counter block `iv` (16
    /// bytes). The same call encrypts and decrypts; nil only if OpenSSL fails.
    public static func crypt(_ data: [UInt8], key: [UInt8], iv: ArraySlice<UInt8>) -> [UInt8]? {
        var out = data
        return crypt(inPlace: &out, from: 0, key: key, iv: iv) ? out : nil
    }
}

extension AESCTR {
    /// `buffer[from...]` XOR the key stream, in place (CTR's output may be its input): a
    /// value row is sealed in the buffer that holds it. False only if OpenSSL fails.
    public static func crypt(inPlace buffer: inout [UInt8], from: Int, key: [UInt8], iv: ArraySlice<UInt8>) -> Bool {
        iv.withUnsafeBytes { crypt(inPlace: &buffer, from: from, key: key, iv: $0) }
    }

    /// `crypt(inPlace:from:key:iv:)` with the counter block where it lies.
    public static func crypt(inPlace buffer: inout [UInt8], from: Int, key: [UInt8], iv: UnsafeRawBufferPointer) -> Bool
    {
        key.withUnsafeBytes { crypt(inPlace: &buffer, from: from, key: $0, iv: iv) }
    }

    /// `crypt(inPlace:from:key:iv:)` with the key and the counter block where they lie.
    public static func crypt(
        inPlace buffer: inout [UInt8], from: Int, key: UnsafeRawBufferPointer, iv: UnsafeRawBufferPointer
    ) -> Bool {
        guard key.count == 32, iv.count == 16, from >= 0, from <= buffer.count else { return false }
        return contexts.withValue { context in
            guard let ctx = context?.ctx else { return false }
            let ok = EVP_EncryptInit_ex(
                ctx, nil, nil, key.baseAddress?.assumingMemoryBound(to: UInt8.self),
                iv.baseAddress?.assumingMemoryBound(to: UInt8.self))
            guard ok == 1 else { return false }
            let n = buffer.count - from
            guard n > 0 else { return true }
            guard n <= Int(Int32.max) else { return false }
            var written: Int32 = 0
            return buffer.withUnsafeMutableBufferPointer { b in
                guard let base = b.baseAddress else { return false }
                return EVP_EncryptUpdate(ctx, base + from, &written, base + from, Int32(n)) == 1 && Int(written) == n
            }
        }
    }
}

/// Bytes from the kernel's random generator (through OpenSSL's DRBG, seeded from it). Small
/// requests are served from 16 KiB drawn at once, per thread: one call per entry cost half a
/// microsecond, and one pool shared by the event loops a lock taken on every entry.
public enum SecureRandom {
    final class Pool {
        var buffer: [UInt8] = []
        var used = 0
        /// `used` changes on every draw: no other thread's object on its cache lines.
        let padding = CacheLinePadding()
    }
    private static let pools = PerThread { Pool() }
    private static let refill = 16 << 10

    /// `count` random bytes.
    public static func bytes(_ count: Int) throws -> [UInt8] { Array(try slice(count)) }

    /// `count` random bytes as a slice of this thread's pool, never handed out twice: no copy
    /// and no allocation (a refill replaces the pool's array; slices keep the old one alive).
    public static func slice(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count <= 256 else { return try fresh(count)[...] }
        return try pools.withValue { (pool) throws(AuditError) -> ArraySlice<UInt8> in
            guard let pool else { return try fresh(count)[...] }
            if pool.buffer.count - pool.used < count {
                pool.buffer = try fresh(refill)
                pool.used = 0
            }
            defer { pool.used += count }
            return pool.buffer[pool.used..<(pool.used + count)]
        }
    }

    private static func fresh(_ count: Int) throws(AuditError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        guard count == 0 || RAND_bytes(&out, Int32(count)) == 1 else {
            throw AuditError("the random generator failed; nothing was written")
        }
        return out
    }
}

extension SHA256 {
    /// SHA-256 over bytes given in parts, where they lie: no buffer is joined.
    public struct Stream {
        private var c = SHA256_CTX()

        /// A digest that begins with `prefix`.
        public init(prefix: UInt8) {
            _ = SHA256_Init(&c)
            var p = prefix
            _ = SHA256_Update(&c, &p, 1)
        }

        /// Adds `bytes`.
        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            if bytes.count > 0 { _ = SHA256_Update(&c, bytes.baseAddress, bytes.count) }
        }

        /// Adds `byte`.
        public mutating func update(byte: UInt8) {
            var b = byte
            _ = SHA256_Update(&c, &b, 1)
        }

        /// The digest.
        public mutating func finish() -> Hash {
            var t: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            withUnsafeMutableBytes(of: &t) { _ = SHA256_Final($0.baseAddress!.assumingMemoryBound(to: UInt8.self), &c) }
            return Hash(
                w0: UInt64(littleEndian: t.0), w1: UInt64(littleEndian: t.1), w2: UInt64(littleEndian: t.2),
                w3: UInt64(littleEndian: t.3))
        }
    }
}

/// Base64url without padding (RFC 4648 §5): how commitments and subject tags are written in
/// entries (format-spec.md §5.4.1), 43 characters for 32 bytes, 22 for 16.
public enum Base64URL {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Appends the encoding of `bytes` to `out`.
    public static func append<C: Collection>(_ bytes: C, to out: inout [UInt8]) where C.Element == UInt8 {
        if let done: Void = bytes.withContiguousStorageIfAvailable({ append(raw: UnsafeRawBufferPointer($0), to: &out) }
        ) {
            return done
        }
        Array(bytes).withUnsafeBytes { append(raw: $0, to: &out) }
    }

    /// Three bytes at a time into a buffer on the stack, appended once.
    static func append(raw b: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        let n = b.count
        let chars = (n * 4 + 2) / 3
        guard chars > 0 else { return }
        alphabet.withUnsafeBufferPointer { a in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chars + 3) { t in
                var i = 0
                var o = 0
                while i + 3 <= n {
                    let v = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2])
                    t[o] = a[Int(v >> 18)]
                    t[o + 1] = a[Int((v >> 12) & 63)]
                    t[o + 2] = a[Int((v >> 6) & 63)]
                    t[o + 3] = a[Int(v & 63)]
                    i += 3
                    o += 4
                }
                if n - i == 1 {
                    let v = UInt32(b[i]) << 16
                    t[o] = a[Int(v >> 18)]
                    t[o + 1] = a[Int((v >> 12) & 63)]
                } else if n - i == 2 {
                    let v = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8
                    t[o] = a[Int(v >> 18)]
                    t[o + 1] = a[Int((v >> 12) & 63)]
                    t[o + 2] = a[Int((v >> 6) & 63)]
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: t[0..<chars]))
            }
        }
    }

    /// The encoding of `bytes`.
    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        append(bytes, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes `text` encodes; nil for anything but canonical unpadded base64url.
    public static func decode(_ text: String) -> [UInt8]? {
        // Over the string's own bytes where it has them (a native string always does): its
        // UTF-8 view's iterator was a call per character.
        if let decoded = text.utf8.withContiguousStorageIfAvailable({ decode(bytes: $0) }) { return decoded }
        return Array(text.utf8).withUnsafeBufferPointer { decode(bytes: $0) }
    }

    /// The bytes `text` (base64url characters) encodes; nil for anything but canonical
    /// unpadded base64url.
    public static func decode(bytes text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in text {
            let v: UInt8
            switch c {
            case 0x41...0x5A: v = c - 0x41
            case 0x61...0x7A: v = c - 0x61 + 26
            case 0x30...0x39: v = c - 0x30 + 52
            case 0x2D: v = 62
            case 0x5F: v = 63
            default: return nil
            }
            acc = (acc << 6) | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((acc >> UInt32(bits)) & 0xFF))
            }
        }
        // Leftover bits must be zero and fewer than 6 (a canonical encoding).
        guard bits < 6, acc & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}
