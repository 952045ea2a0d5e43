import CCrypto

/// HMAC-SHA256 (RFC 2104) with the key's pads hashed once: each MAC costs two SHA-256
/// compressions of its message plus two copies of a context.
public struct HMACSHA256: @unchecked Sendable {
    private var inner = SHA256_CTX()
    private var outer = SHA256_CTX()

    /// A MAC keyed by `key` (at most 64 bytes: the keys here are 32).
    public init(key: [UInt8]) {
        precondition(key.count <= 64, "HMAC keys here are at most one block")
        var ipad = [UInt8](repeating: 0x36, count: 64)
        var opad = [UInt8](repeating: 0x5C, count: 64)
        for (i, b) in key.enumerated() {
            ipad[i] ^= b
            opad[i] ^= b
        }
        _ = SHA256_Init(&inner)
        _ = SHA256_Update(&inner, ipad, 64)
        _ = SHA256_Init(&outer)
        _ = SHA256_Update(&outer, opad, 64)
    }

    /// The MAC of the concatenation of `parts`.
    public func mac(_ parts: [UInt8]...) -> [UInt8] {
        var c = inner
        for p in parts { _ = SHA256_Update(&c, p, p.count) }
        var mid = [UInt8](repeating: 0, count: 32)
        _ = SHA256_Final(&mid, &c)
        var o = outer
        _ = SHA256_Update(&o, mid, 32)
        var out = [UInt8](repeating: 0, count: 32)
        _ = SHA256_Final(&out, &o)
        return out
    }
}

/// Bytes from the kernel's random generator (through OpenSSL's DRBG, seeded from it).
public enum SecureRandom {
    /// `count` random bytes.
    public static func bytes(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        guard count == 0 || RAND_bytes(&out, Int32(count)) == 1 else {
            throw AuditError("the random generator failed; nothing was written")
        }
        return out
    }
}
