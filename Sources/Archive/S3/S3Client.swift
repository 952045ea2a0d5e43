import AuditBase
import CCrypto
import Foundation
import LogProofs
import SegmentStore

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where and how to reach an S3-compatible store (`--archive s3://bucket/prefix`).
public struct S3Settings: Sendable, Equatable {
    public var bucket: String
    /// Key prefix, without leading or trailing `/` (may be empty).
    public var prefix: String
    /// `http(s)://host[:port]`.
    public var endpoint: String
    public var region: String
    /// Path-style addressing (`endpoint/bucket/key`), as on-premises stores want; otherwise
    /// virtual-hosted (`bucket.host/key`).
    public var pathStyle: Bool
    public var accessKey: String
    public var secretKey: String
    public var sessionToken: String?

    /// Settings from `s3://bucket/prefix` and the environment: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`),
    /// `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`), `AUDITLOG_S3_PATH_STYLE=1`; or
    /// `AUDITLOG_S3_CREDENTIALS=FILE`, a file of `KEY=VALUE` lines with those names.
    public init(url: String, environment env: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard url.hasPrefix("s3://") else {
            throw AuditError("an S3 archive is named s3://BUCKET[/PREFIX], not \(url)")
        }
        let rest = url.dropFirst(5)
        let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        bucket = String(parts[0])
        prefix = parts.count > 1 ? String(parts[1]).trimmingCharacters(in: CharacterSet(charactersIn: "/")) : ""
        guard !bucket.isEmpty, bucket.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) else {
            throw AuditError("'\(bucket)' is not an S3 bucket name (s3://BUCKET[/PREFIX])")
        }
        var e = env
        if let file = env["AUDITLOG_S3_CREDENTIALS"] {
            guard let text = try FileOps.readFile(file).map({ String(decoding: $0, as: UTF8.self) }) else {
                throw AuditError("AUDITLOG_S3_CREDENTIALS names \(file), which does not exist")
            }
            for line in text.split(separator: "\n") where line.contains("=") && !line.hasPrefix("#") {
                let kv = line.split(separator: "=", maxSplits: 1)
                e[String(kv[0]).trimmingCharacters(in: .whitespaces)] = String(kv[1]).trimmingCharacters(
                    in: .whitespaces)
            }
        }
        guard let ak = e["AWS_ACCESS_KEY_ID"], let sk = e["AWS_SECRET_ACCESS_KEY"], !ak.isEmpty, !sk.isEmpty else {
            throw AuditError(
                "the S3 archive needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AUDITLOG_S3_CREDENTIALS=FILE"
            )
        }
        accessKey = ak
        secretKey = sk
        sessionToken = e["AWS_SESSION_TOKEN"]
        region = e["AWS_REGION"] ?? e["AWS_DEFAULT_REGION"] ?? "us-east-1"
        endpoint = (e["AWS_ENDPOINT_URL_S3"] ?? e["AWS_ENDPOINT_URL"] ?? "https://s3.\(region).amazonaws.com")
            .trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        pathStyle =
            e["AUDITLOG_S3_PATH_STYLE"].map { $0 == "1" || $0 == "true" }
            ?? (e["AWS_ENDPOINT_URL_S3"] ?? e["AWS_ENDPOINT_URL"] != nil)
    }
}

/// An answer from the store.
public struct S3Response: Sendable {
    public var status: Int
    /// Header names lower-cased.
    public var headers: [String: String]
    public var body: [UInt8]
    public var text: String { String(decoding: body, as: UTF8.self) }
    /// The `<Code>` of an S3 error body.
    public var code: String? { S3XML.values("Code", in: text).first }
}

/// An S3 request failed; `status` 0 when the store could not be reached.
public struct S3Error: Error, CustomStringConvertible, Sendable {
    public var status: Int
    public var code: String?
    public var message: String
    public var description: String { message }
}

/// Signed S3 requests (SigV4, the payload's SHA-256 signed, so the store checks what arrives),
/// with retries on unreachable stores and 5xx answers.
public final class S3Client: @unchecked Sendable {
    public let settings: S3Settings
    let session: URLSession
    /// For an `http://` endpoint: requests on kept connections, on the calling thread.
    let plain: HTTP1Client?
    let timeout: TimeInterval
    /// Attempts per request when the store cannot be reached or answers 5xx.
    public var attempts = 4

    /// A client for `settings`; a request that gets no answer within `timeout` seconds fails.
    /// An `http://` endpoint is reached with `HTTP1Client` (unless `foundation`, kept for
    /// comparison in `auditbench s3-put`), an `https://` one with URLSession.
    public init(_ settings: S3Settings, timeout: TimeInterval = 60, foundation: Bool = false) {
        self.settings = settings
        self.timeout = timeout
        let c = URLSessionConfiguration.ephemeral
        c.timeoutIntervalForRequest = timeout
        c.httpShouldSetCookies = false
        session = URLSession(configuration: c)
        if !foundation, let base = URL(string: settings.endpoint), base.scheme == "http", let host = base.host {
            // As large as any object auditd reads whole: a bundle's file.
            plain = HTTP1Client(host: host, port: base.port ?? 80, maxBody: 1 << 32)
        } else {
            plain = nil
        }
    }

    /// The store's name for messages.
    public var place: String {
        "s3://\(settings.bucket)\(settings.prefix.isEmpty ? "" : "/" + settings.prefix) at \(settings.endpoint)"
    }

    /// One request; `key` nil addresses the bucket. Throws only when the store cannot be
    /// reached after the retries; any HTTP status is returned.
    public func request(
        _ method: String, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [],
        body: [UInt8] = []
    ) throws -> S3Response {
        var last: Error = S3Error(status: 0, message: "no attempt")
        for attempt in 0..<max(1, attempts) {
            if attempt > 0 { Thread.sleep(forTimeInterval: 0.2 * Double(1 << attempt)) }
            do {
                let r = try once(method, key: key, query: query, headers: headers, body: body)
                if r.status >= 500, attempt + 1 < attempts {
                    last = S3Error(status: r.status, code: r.code, message: "HTTP \(r.status)")
                    continue
                }
                return r
            } catch {
                last = error
            }
        }
        throw S3Error(
            status: 0,
            message: "the object store \(place) cannot be reached (\(last)); check the endpoint and the network")
    }

    /// A request that must answer 2xx, or an error naming what was asked and what the store said.
    @discardableResult
    public func expect(
        _ what: String, _ method: String, key: String?, query: [(String, String)] = [],
        headers: [(String, String)] = [], body: [UInt8] = []
    ) throws -> S3Response {
        let r = try request(method, key: key, query: query, headers: headers, body: body)
        guard (200..<300).contains(r.status) else { throw failure(what, r) }
        return r
    }

    /// An error for answer `r` to `what`, with advice for the usual causes.
    public func failure(_ what: String, _ r: S3Response) -> S3Error {
        let code = r.code
        let advice: String
        switch code {
        case "InvalidAccessKeyId", "SignatureDoesNotMatch":
            advice =
                "the store refused the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AUDITLOG_S3_CREDENTIALS)"
        case "NoSuchBucket": advice = "bucket \(settings.bucket) does not exist: create it with Object Lock enabled"
        case "AccessDenied": advice = "the store denied it"
        default: advice = S3XML.values("Message", in: r.text).first ?? String(r.text.prefix(200))
        }
        return S3Error(
            status: r.status, code: code,
            message: "\(what) in \(place): HTTP \(r.status)\(code.map { " \($0)" } ?? ""): \(advice)")
    }

    func once(
        _ method: String, key: String?, query: [(String, String)], headers: [(String, String)], body: [UInt8]
    ) throws -> S3Response {
        guard let base = URL(string: settings.endpoint), let scheme = base.scheme, let host0 = base.host else {
            throw S3Error(status: 0, message: "the S3 endpoint \(settings.endpoint) is not a URL")
        }
        let portPart = base.port.map { ":\($0)" } ?? ""
        var host = host0 + portPart
        var path = ""
        if settings.pathStyle {
            path = "/" + settings.bucket + (key.map { "/" + $0 } ?? "")
        } else {
            host = settings.bucket + "." + host
            path = "/" + (key ?? "")
        }
        if path.isEmpty { path = "/" }
        let payloadHash = SHA256.hash(body).hex
        let date = SigV4.amzDate(Date())
        var hs = headers
        hs.append(("host", host))
        hs.append(("x-amz-date", date))
        hs.append(("x-amz-content-sha256", payloadHash))
        let signed = try SigV4.sign(
            method: method, path: path, query: query, headers: hs, payloadHash: payloadHash,
            credentials: .init(
                accessKey: settings.accessKey, secretKey: settings.secretKey, sessionToken: settings.sessionToken),
            region: settings.region, service: "s3")
        var pairs = query.map { (SigV4.encode($0.0), SigV4.encode($0.1)) }
        pairs.sort { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }
        let q = pairs.map { $0.1.isEmpty && !$0.0.isEmpty ? $0.0 + "=" : $0.0 + "=" + $0.1 }.joined(separator: "&")
        let target = SigV4.encode(path, keepSlash: true) + (q.isEmpty ? "" : "?" + q)
        if let plain {
            if let t = settings.sessionToken { hs.append(("x-amz-security-token", t)) }
            hs.append(("Authorization", signed.authorization))
            let a = try plain.perform(
                method, target, headers: hs, body: body, deadline: .now + .milliseconds(Int64(timeout * 1000)))
            return S3Response(status: a.status, headers: a.headers, body: a.body)
        }
        guard let url = URL(string: "\(scheme)://\(host)\(target)") else {
            throw S3Error(status: 0, message: "cannot build a URL for key \(key ?? "")")
        }
        var req = URLRequest(url: url)
        req.httpMethod = method
        for (k, v) in hs where k.lowercased() != "host" { req.setValue(v, forHTTPHeaderField: k) }
        if let t = settings.sessionToken { req.setValue(t, forHTTPHeaderField: "x-amz-security-token") }
        req.setValue(signed.authorization, forHTTPHeaderField: "Authorization")
        if !body.isEmpty || method == "PUT" || method == "POST" { req.httpBody = Data(body) }
        let sem = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<S3Response, Error> = .failure(S3Error(status: 0, message: "no answer"))
        session.dataTask(with: req) { data, response, error in
            if let error {
                result = .failure(error)
            } else if let h = response as? HTTPURLResponse {
                var headers: [String: String] = [:]
                for (k, v) in h.allHeaderFields { headers["\(k)".lowercased()] = "\(v)" }
                result = .success(S3Response(status: h.statusCode, headers: headers, body: Array(data ?? Data())))
            }
            sem.signal()
        }.resume()
        sem.wait()
        return try result.get()
    }

    /// Base64 of the MD5 of `body` (`Content-MD5`, which S3 requires on Object Lock requests).
    public static func contentMD5(_ body: [UInt8]) -> String {
        var out = [UInt8](repeating: 0, count: 16)
        var len: UInt32 = 0
        _ = body.withUnsafeBytes { EVP_Digest($0.baseAddress, body.count, &out, &len, EVP_md5(), nil) }
        return Data(out).base64EncodedString()
    }
}

/// Just enough XML for S3's answers: the text of every `<Tag>…</Tag>`, unescaped.
public enum S3XML {
    public static func values(_ tag: String, in text: String, raw: Bool = false) -> [String] {
        var out: [String] = []
        var rest = text[...]
        let open = "<\(tag)>"
        let close = "</\(tag)>"
        while let a = rest.range(of: open), let b = rest.range(of: close, range: a.upperBound..<rest.endIndex) {
            let inner = String(rest[a.upperBound..<b.lowerBound])
            out.append(raw ? inner : unescape(inner))
            rest = rest[b.upperBound...]
        }
        return out
    }

    /// The blocks `<Tag>…</Tag>` (to read fields of each listed object together).
    public static func blocks(_ tag: String, in text: String) -> [String] { values(tag, in: text, raw: true) }

    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
