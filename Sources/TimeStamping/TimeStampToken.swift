import AuditBase
import CCrypto
import Foundation

/// Why a time-stamp token or answer was refused, in words a person can act on.
public struct TimeStampError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }

    /// `what`, with the reason OpenSSL gave (its queue is emptied).
    static func openssl(_ what: String) -> TimeStampError {
        var reasons: [String] = []
        while case let e = ERR_get_error(), e != 0 {
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(e, &buf, buf.count)
            reasons.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return TimeStampError(reasons.isEmpty ? what : what + " (" + reasons.joined(separator: "; ") + ")")
    }
}

/// The certificates an auditor (or the daemon) trusts to sign time-stamp tokens: the TSA's
/// own certificate or the CA that issued it, from a PEM file.
public final class TimeStampTrust: @unchecked Sendable {
    private let certs: [OpaquePointer]
    /// Where they came from, for messages.
    public let source: String

    /// The certificates of PEM text `pem`; refuses text that holds none.
    public init(pem: [UInt8], source: String) throws(TimeStampError) {
        self.source = source
        var out: [OpaquePointer] = []
        let bio = pem.withUnsafeBytes { BIO_new_mem_buf($0.baseAddress, Int32($0.count)) }
        guard let bio else { throw .openssl("cannot read \(source)") }
        defer { BIO_free(bio) }
        while let x = PEM_read_bio_X509(bio, nil, nil, nil) { out.append(x) }
        ERR_clear_error()  // the end of the text reads as an error
        guard !out.isEmpty else {
            throw TimeStampError(
                "\(source) holds no PEM certificate: give the time-stamping authority's certificate or its CA's (-----BEGIN CERTIFICATE-----)"
            )
        }
        certs = out
    }

    /// The certificates of the PEM file at `path`.
    public convenience init(file path: String) throws(TimeStampError) {
        let bytes: [UInt8]?
        do { bytes = try FileOps.readFile(path, limit: 1 << 20) } catch {
            throw TimeStampError("cannot read \(path): \(error)")
        }
        guard let bytes else { throw TimeStampError("\(path) does not exist: give a PEM file of TSA certificates") }
        try self.init(pem: bytes, source: path)
    }

    deinit { for c in certs { X509_free(c) } }

    /// A store of these certificates that checks chains at `time` (seconds since 1970): a token
    /// is judged by the certificates valid when it was made, so an expired TSA certificate
    /// still vouches for what it signed in its time. The caller owns the store.
    fileprivate func store(at time: Int64) -> OpaquePointer? {
        guard let s = X509_STORE_new() else { return nil }
        for c in certs where X509_STORE_add_cert(s, c) != 1 {
            X509_STORE_free(s)
            return nil
        }
        if let p = X509_STORE_get0_param(s) {
            X509_VERIFY_PARAM_set_time(p, time_t(time))
            // The TSA's own certificate may be the anchor, not only a self-signed root.
            X509_VERIFY_PARAM_set_flags(p, UInt(X509_V_FLAG_PARTIAL_CHAIN))
        }
        return s
    }
}

/// An RFC 3161 time-stamp token (a CMS SignedData over a `TSTInfo`), checked.
public struct TimeStampToken: Sendable {
    /// The token's DER bytes, as stored in the log and carried by exports.
    public var der: [UInt8]
    /// Its `genTime`, in milliseconds since 1970.
    public var time: Int64
    /// The subject of the certificate that signed it.
    public var signer: String
    /// Its serial number, in hex.
    public var serial: String
    /// Its nonce (as a number), when it has one.
    public var nonce: UInt64?

    /// The token inside a `TimeStampResp` from a TSA, if the TSA granted one; else why not.
    public static func fromResponse(_ der: [UInt8]) throws(TimeStampError) -> [UInt8] {
        var p: UnsafePointer<UInt8>? = nil
        let resp: OpaquePointer? = der.withUnsafeBufferPointer { b in
            p = b.baseAddress
            return d2i_TS_RESP(nil, &p, b.count)
        }
        guard let resp else { throw .openssl("the answer is not an RFC 3161 TimeStampResp") }
        defer { TS_RESP_free(resp) }
        guard let info = TS_RESP_get_status_info(resp), let st = TS_STATUS_INFO_get0_status(info) else {
            throw TimeStampError("the answer has no status")
        }
        let status = ASN1_INTEGER_get(st)
        // granted (0) or grantedWithMods (1)
        guard status == 0 || status == 1 else {
            throw TimeStampError("the time-stamping authority refused the request (PKIStatus \(status))")
        }
        guard let token = TS_RESP_get_token(resp) else { throw TimeStampError("the answer grants but holds no token") }
        var out: UnsafeMutablePointer<UInt8>? = nil
        let n = i2d_PKCS7(token, &out)
        guard n > 0, let out else { throw .openssl("cannot encode the token") }
        defer { CRYPTO_free(out, nil, 0) }
        return Array(UnsafeBufferPointer(start: out, count: Int(n)))
    }

    /// Checks token `der`: its signature, by a certificate that chains to `trust` (at the
    /// token's own time) and may sign time-stamps; that it stamps `digest` with SHA-256; and,
    /// when given, its `nonce`. Throws, saying which, when any fails.
    public static func verify(
        _ der: [UInt8], digest: [UInt8], trust: TimeStampTrust, nonce: [UInt8]? = nil
    ) throws(TimeStampError) -> TimeStampToken {
        guard der.count <= 1 << 16 else { throw TimeStampError("the token is larger than 64 KiB") }
        var p: UnsafePointer<UInt8>? = nil
        let p7 = der.withUnsafeBufferPointer { b in
            p = b.baseAddress
            return d2i_PKCS7(nil, &p, b.count)
        }
        guard let p7 else { throw .openssl("the token is not a CMS SignedData") }
        defer { PKCS7_free(p7) }
        guard let tst = PKCS7_to_TS_TST_INFO(p7) else { throw .openssl("the token holds no TSTInfo") }
        defer { TS_TST_INFO_free(tst) }
        guard let gt = TS_TST_INFO_get_time(tst), let time = Self.generalizedTime(gt) else {
            throw TimeStampError("the token's genTime cannot be read")
        }
        let tokenNonce = TS_TST_INFO_get_nonce(tst).flatMap { n -> UInt64? in
            var v: UInt64 = 0
            return ASN1_INTEGER_get_uint64(&v, n) == 1 ? v : nil
        }
        if let nonce {
            let want = TimeStampRequest.normalized(nonce).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard tokenNonce == want else { throw TimeStampError("the token's nonce is not the request's") }
        }
        guard digest.count == 32, let ctx = TS_VERIFY_CTX_new() else { throw TimeStampError("cannot check the token") }
        defer { TS_VERIFY_CTX_free(ctx) }
        guard let store = trust.store(at: time / 1000) else { throw .openssl("cannot load \(trust.source)") }
        TS_VERIFY_CTX_set_store(ctx, store)  // the context owns it now
        guard let imprint = CRYPTO_malloc(32, nil, 0)?.assumingMemoryBound(to: UInt8.self) else {
            throw TimeStampError("out of memory")
        }
        imprint.initialize(from: digest, count: 32)
        TS_VERIFY_CTX_set_imprint(ctx, imprint, 32)  // and this
        TS_VERIFY_CTX_set_flags(ctx, Int32(TS_VFY_VERSION | TS_VFY_SIGNATURE | TS_VFY_IMPRINT))
        guard TS_RESP_verify_token(ctx, p7) == 1 else {
            throw .openssl(
                "the token does not verify: it is not signed by a certificate of \(trust.source), or it stamps other data"
            )
        }
        var serial = ""
        if let s = TS_TST_INFO_get_serial(tst), let bn = ASN1_INTEGER_to_BN(s, nil) {
            if let h = BN_bn2hex(bn) {
                serial = String(cString: h).lowercased()
                CRYPTO_free(h, nil, 0)
            }
            BN_free(bn)
        }
        return TimeStampToken(der: der, time: time, signer: Self.signer(p7), serial: serial, nonce: tokenNonce)
    }

    /// The subject of the certificate that signed `p7`, or `unknown` when it carries none.
    private static func signer(_ p7: UnsafeMutablePointer<PKCS7>) -> String {
        guard let sk = PKCS7_get0_signers(p7, nil, 0) else {
            ERR_clear_error()
            return "unknown"
        }
        defer { OPENSSL_sk_free(sk) }
        guard OPENSSL_sk_num(sk) > 0, let raw = OPENSSL_sk_value(sk, 0) else { return "unknown" }
        let x = OpaquePointer(raw)
        guard let line = X509_NAME_oneline(X509_get_subject_name(x), nil, 0) else { return "unknown" }
        defer { CRYPTO_free(line, nil, 0) }
        return String(cString: line)
    }

    /// `YYYYMMDDhhmmss[.f*]Z` in milliseconds since 1970.
    static func generalizedTime(_ t: UnsafePointer<ASN1_STRING>) -> Int64? {
        guard let d = ASN1_STRING_get0_data(t) else { return nil }
        let s = Array(UnsafeBufferPointer(start: d, count: Int(ASN1_STRING_length(t))))
        return parseGeneralizedTime(s)
    }

    /// The GeneralizedTime text `s` (UTC, `Z`), in milliseconds; nil when it is not one.
    public static func parseGeneralizedTime(_ s: [UInt8]) -> Int64? {
        guard s.count >= 15, s.last == UInt8(ascii: "Z") else { return nil }
        func num(_ a: Int, _ n: Int) -> Int? {
            var v = 0
            for b in s[a..<(a + n)] {
                guard b >= 0x30, b <= 0x39 else { return nil }
                v = v * 10 + Int(b - 0x30)
            }
            return v
        }
        guard let y = num(0, 4), let mo = num(4, 2), let d = num(6, 2), let h = num(8, 2), let mi = num(10, 2),
            let se = num(12, 2), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, se < 61
        else { return nil }
        var ms = 0
        if s.count > 15 {
            guard s[14] == UInt8(ascii: "."), s.count >= 17 else { return nil }
            let digits = s[15..<(s.count - 1)]
            guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            for (i, b) in digits.prefix(3).enumerated() { ms += Int(b - 0x30) * [100, 10, 1][i] }
        } else if s.count != 15 {
            return nil
        }
        let text = String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, h, mi, se, ms)
        return Timestamp.parse(text)
    }
}
