import CCrypto

/// Ed25519 through OpenSSL's EVP interface.
public enum Ed25519 {
    /// Why a key or signature operation failed.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// In words.
        public var description: String
    }

    static func opensslError(_ what: String) -> Failure {
        let code = ERR_get_error()
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buf, buf.count)
        let text = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return Failure(description: "\(what): \(text)")
    }

    /// 32 random bytes from OpenSSL's CSPRNG: a new private key seed.
    public static func randomSeed() throws(Failure) -> [UInt8] {
        var seed = [UInt8](repeating: 0, count: 32)
        guard RAND_bytes(&seed, 32) == 1 else { throw opensslError("RAND_bytes failed") }
        return seed
    }

    /// The public key of a 32-byte seed.
    public static func publicKey(seed: [UInt8]) throws(Failure) -> [UInt8] {
        guard seed.count == 32, let pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, 32) else {
            throw opensslError("invalid Ed25519 private key")
        }
        defer { EVP_PKEY_free(pkey) }
        var pub = [UInt8](repeating: 0, count: 32)
        var len = 32
        guard EVP_PKEY_get_raw_public_key(pkey, &pub, &len) == 1, len == 32 else {
            throw opensslError("cannot derive public key")
        }
        return pub
    }

    /// Signs `message` with the key whose seed is `seed`.
    public static func sign(_ message: [UInt8], seed: [UInt8]) throws(Failure) -> [UInt8] {
        guard seed.count == 32, let pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, 32) else {
            throw opensslError("invalid Ed25519 private key")
        }
        defer { EVP_PKEY_free(pkey) }
        guard let ctx = EVP_MD_CTX_new() else { throw opensslError("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestSignInit(ctx, nil, nil, nil, pkey) == 1 else { throw opensslError("EVP_DigestSignInit") }
        var sig = [UInt8](repeating: 0, count: 64)
        var len = 64
        guard EVP_DigestSign(ctx, &sig, &len, message, message.count) == 1, len == 64 else {
            throw opensslError("EVP_DigestSign")
        }
        return sig
    }

    /// True if `signature` is a valid signature of `message` by `publicKey`.
    public static func verify(_ signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard signature.count == 64, publicKey.count == 32,
            let pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, publicKey, 32)
        else { return false }
        defer { EVP_PKEY_free(pkey) }
        guard let ctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, nil, nil, pkey) == 1 else { return false }
        return EVP_DigestVerify(ctx, signature, 64, message, message.count) == 1
    }
}
