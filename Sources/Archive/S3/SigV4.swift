import AuditBase
import Foundation
import LogProofs

/// AWS Signature Version 4 (for the S3 archive backend, issue 12), with the crypto the project
/// already links: HMAC-SHA256 built on its SHA-256. Checked against the published SigV4 test
/// suite (Tests/ArchiveTests/SigV4Tests.swift).
public enum SigV4 {
    /// Access key and secret.
    public struct Credentials: Sendable {
        /// The access key id.
        public var accessKey: String
        /// The secret access key.
        public var secretKey: String
        /// A session token, sent as x-amz-security-token (signed), when there is one.
        public var sessionToken: String?

        /// Credentials.
        public init(accessKey: String, secretKey: String, sessionToken: String? = nil) {
            self.accessKey = accessKey
            self.secretKey = secretKey
            self.sessionToken = sessionToken
        }
    }

    /// What a request's signature was made from, and the header to send.
    public struct Signed: Sendable {
        /// The canonical request.
        public var canonicalRequest: String
        /// The string to sign.
        public var stringToSign: String
        /// The `Authorization` header's value.
        public var authorization: String
    }

    /// The SHA-256 of an empty payload, hex.
    public static let emptyPayloadHash = SHA256.hash([UInt8]()).hex

    /// HMAC-SHA256 (RFC 2104).
    public static func hmac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var k = key.count > 64 ? SHA256.hash(key).bytes : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        let inner = SHA256.hash(k.map { $0 ^ 0x36 } + message).bytes
        return SHA256.hash(k.map { $0 ^ 0x5c } + inner).bytes
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters (and `/` when
    /// `keepSlash`): how SigV4 (and S3) encode path segments and query parameters.
    public static func encode(_ s: String, keepSlash: Bool = false) -> String {
        var out = ""
        for b in s.utf8 {
            let c = Character(Unicode.Scalar(b))
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || "-._~".contains(c)
                || (keepSlash && c == "/")
            {
                out.append(c)
            } else {
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    /// Signs a request. `path` and the query pairs are given raw (they are encoded here, once,
    /// as S3 wants: no double encoding, no path normalization); `headers` must include `host`
    /// and `x-amz-date` (yyyyMMdd'T'HHmmss'Z'); `payloadHash` is the hex SHA-256 of the body
    /// (or `UNSIGNED-PAYLOAD`).
    public static func sign(
        method: String, path: String, query: [(String, String)], headers: [(String, String)], payloadHash: String,
        credentials: Credentials, region: String, service: String
    ) throws -> Signed {
        var hs: [(String, String)] = headers.map { ($0.0.lowercased(), Self.trim($0.1)) }
        if let t = credentials.sessionToken, !hs.contains(where: { $0.0 == "x-amz-security-token" }) {
            hs.append(("x-amz-security-token", t))
        }
        guard let amzDate = hs.first(where: { $0.0 == "x-amz-date" })?.1, amzDate.count == 16 else {
            throw AuditError("SigV4: the request needs an x-amz-date header (yyyyMMddTHHmmssZ)")
        }
        guard hs.contains(where: { $0.0 == "host" }) else {
            throw AuditError("SigV4: the request needs a host header")
        }
        // Headers of the same name are joined with commas, in the order given.
        var merged: [String: [String]] = [:]
        for (k, v) in hs { merged[k, default: []].append(v) }
        let names = merged.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(merged[$0]?.joined(separator: ",") ?? "")\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        var pairs: [(key: String, value: String)] = query.map { (key: encode($0.0), value: encode($0.1)) }
        pairs.sort { a, b in a.key == b.key ? a.value < b.value : a.key < b.key }
        let canonicalQuery = pairs.map { $0.key + "=" + $0.value }.joined(separator: "&")
        let canonicalURI = path.isEmpty ? "/" : encode(path, keepSlash: true)
        let creq = [method, canonicalURI, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].joined(
            separator: "\n")
        let day = String(amzDate.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let sts = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n" + SHA256.hash(Array(creq.utf8)).hex
        var key = hmac(key: Array(("AWS4" + credentials.secretKey).utf8), Array(day.utf8))
        for part in [region, service, "aws4_request"] { key = hmac(key: key, Array(part.utf8)) }
        let signature = hmac(key: key, Array(sts.utf8)).map { String(format: "%02x", $0) }.joined()
        return Signed(
            canonicalRequest: creq, stringToSign: sts,
            authorization:
                "AWS4-HMAC-SHA256 Credential=\(credentials.accessKey)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        )
    }

    /// A header value trimmed, with runs of spaces inside collapsed to one.
    static func trim(_ v: String) -> String {
        v.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    /// `x-amz-date` for `date`.
    public static func amzDate(_ date: Date) -> String {
        utcSeconds(date.timeIntervalSince1970.rounded(.down), compact: true)
    }

    /// UTC second `seconds` as `YYYY-MM-DDTHH:MM:SSZ`, or `YYYYMMDDTHHMMSSZ` when `compact`.
    static func utcSeconds(_ seconds: Double, compact: Bool) -> String {
        // Within 0000-9999 as the formats allow; beyond, the nearest end (a lock never shorter).
        // Clamped as a Double: a lock of `tail_lock` = Int.max seconds must not trap Int64(_:).
        let s = seconds.isNaN ? 0 : min(max(seconds, -62_167_219_200), 253_402_300_799)
        let ms = Int64(s) * 1000
        let full = Timestamp.format(ms).prefix(19)
        return (compact ? String(full.filter { $0 != "-" && $0 != ":" }) : String(full)) + "Z"
    }
}
