import CCrypto
import Foundation

/// AES-256-CTR (NIST SP 800-38A) through OpenSSL: the personal store's row encryption, with the
/// CPU's AES instructions. The cipher is fetched once; each call sets up its key schedule
/// (a few tens of nanoseconds) and encrypts in one pass, with no allocation but the output.
public enum AESCTR {
    nonisolated(unsafe) private static let cipher: OpaquePointer? = EVP_CIPHER_fetch(nil, "AES-256-CTR", nil)
    /// Contexts set up for the cipher, reused: setting only a key and an iv on one costs a
    /// fraction of setting one up (OpenSSL 3 looks the cipher's parameters up each time).
    nonisolated(unsafe) private static var pool: [OpaquePointer] = []
    private static let poolLock = NSLock()

    private static func context() -> OpaquePointer? {
        if let c = poolLock.withLock({ pool.popLast() }) { return c }
        guard let cipher, let c = EVP_CIPHER_CTX_new() else { return nil }
        guard EVP_EncryptInit_ex(c, cipher, nil, nil, nil) == 1 else {
            EVP_CIPHER_CTX_free(c)
            return nil
        }
        return c
    }

    private static func done(_ c: OpaquePointer) {
        poolLock.withLock {
            if pool.count < 64 { pool.append(c) } else { EVP_CIPHER_CTX_free(c) }
        }
    }

    /// `data` XOR the AES-256-CTR key stream of `key` (32 bytes) from counter block `iv` (16
    /// bytes). The same call encrypts and decrypts; nil only if OpenSSL fails.
    public static func crypt(_ data: [UInt8], key: [UInt8], iv: ArraySlice<UInt8>) -> [UInt8]? {
        guard key.count == 32, iv.count == 16, let ctx = context() else { return nil }
        defer { done(ctx) }
        let ok = iv.withUnsafeBufferPointer { EVP_EncryptInit_ex(ctx, nil, nil, key, $0.baseAddress) }
        guard ok == 1 else { return nil }
        var out = [UInt8](repeating: 0, count: data.count + 16)
        var n: Int32 = 0
        guard data.isEmpty || EVP_EncryptUpdate(ctx, &out, &n, data, Int32(data.count)) == 1 else { return nil }
        out.removeLast(out.count - Int(n))
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

extension SHA256 {
    /// The digest of `prefix || a || b` without joining them.
    public static func hash(prefix: UInt8, _ a: ArraySlice<UInt8>, _ b: String) -> Hash {
        var c = SHA256_CTX()
        _ = SHA256_Init(&c)
        var p = prefix
        _ = SHA256_Update(&c, &p, 1)
        a.withUnsafeBufferPointer { _ = SHA256_Update(&c, $0.baseAddress, $0.count) }
        var s = b
        s.withUTF8 { _ = SHA256_Update(&c, $0.baseAddress, $0.count) }
        var t: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &t) { _ = SHA256_Final($0.baseAddress!.assumingMemoryBound(to: UInt8.self), &c) }
        return Hash(
            w0: UInt64(littleEndian: t.0), w1: UInt64(littleEndian: t.1), w2: UInt64(littleEndian: t.2),
            w3: UInt64(littleEndian: t.3))
    }
}

extension Hash {
    /// Appends the lower-case hex of the hash to `out`.
    public func appendHex(to out: inout [UInt8]) {
        withBytes { b in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { t in
                for (i, x) in b.enumerated() {
                    let hi = x >> 4
                    let lo = x & 15
                    t[2 * i] = hi < 10 ? 0x30 + hi : 0x57 + hi
                    t[2 * i + 1] = lo < 10 ? 0x30 + lo : 0x57 + lo
                }
                out.append(contentsOf: UnsafeBufferPointer(t))
            }
        }
    }
}
