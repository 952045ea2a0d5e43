import AuditBase
import Foundation
import LogProofs
import SegmentStore

#if canImport(Glibc)
import Glibc
#endif

/// Bundles in an S3-compatible bucket with Object Lock (format-spec.md §12.5). A bundle is
/// its files under `PREFIX/bundle-N/`, each sent with its SHA-256 (signed into the request, so
/// the store checks what arrives; kept as metadata and checked again on every read), locked in
/// COMPLIANCE mode until the bundle's retention ends; and `PREFIX/bundle-N/bundle.commit`, put
/// last with `If-None-Match: *`, which names the version and hash of each file. A bundle exists
/// once its commit object does, and can never be overwritten.
public final class S3Backend: ArchiveBackend, @unchecked Sendable {
    public let client: S3Client
    /// Where bundles are downloaded to be verified and read (`path(of:)`).
    public let cache: String
    /// Files above this size go up by multipart upload, in parts of this size.
    public var partSize = 16 << 20
    /// The shortest lock put on a bundle: a bundle whose retention has already ended (old
    /// history imported late) is still locked this long, as the store wants a date ahead.
    public var minimumLock: TimeInterval = 86400
    /// Deletions the store refused (its lock outlasting the log's rules): counted, never retried in a loop.
    public private(set) var refusedDeletes = 0
    static let commitFile = "bundle.commit"
    /// Test hook: seconds to pause after a bundle's files are uploaded, before its commit
    /// (`AUDITLOG_TEST_PAUSE_BEFORE_COMMIT`), so a crash can be placed mid-upload.
    public var pauseBeforeCommit: TimeInterval =
        ProcessInfo.processInfo.environment["AUDITLOG_TEST_PAUSE_BEFORE_COMMIT"].flatMap(Double.init) ?? 0

    struct Commit: Codable {
        struct File: Codable {
            var name: String
            var size: Int
            var sha256: String
            var version_id: String?
        }
        var format = "auditlog-s3-bundle/1"
        var bundle: String
        var retain_until: String
        var files: [File]
    }

    /// A backend on `settings`, caching downloads under `cache`. It refuses a bucket without
    /// Object Lock and versioning.
    public init(_ settings: S3Settings, cache: String, check: Bool = true) throws {
        client = S3Client(settings)
        self.cache = cache
        try FileOps.makeDirectory(cache)
        if check { try checkBucket() }
    }

    func key(_ rest: String) -> String { client.settings.prefix.isEmpty ? rest : client.settings.prefix + "/" + rest }

    /// The bucket must keep versions and lock objects: otherwise the store is not a second line of defence.
    public func checkBucket() throws {
        let b = client.settings.bucket
        let v = try client.expect("reading the versioning of bucket \(b)", "GET", key: nil, query: [("versioning", "")])
        guard S3XML.values("Status", in: v.text).first == "Enabled" else {
            throw AuditError(
                "bucket \(b) does not have versioning enabled; an audit archive needs it (and Object Lock): create the bucket with Object Lock enabled, which turns versioning on"
            )
        }
        let r = try client.request("GET", key: nil, query: [("object-lock", "")])
        guard r.status == 200, S3XML.values("ObjectLockEnabled", in: r.text).first == "Enabled" else {
            throw AuditError(
                "bucket \(b) does not have Object Lock enabled (ObjectLockEnabled); auditd archives only into a bucket created with Object Lock, so the store itself refuses early deletes"
            )
        }
    }

    /// `d` in whole seconds, rounded up: a lock written as a date must never end before the
    /// retention it stands for (truncating ended it up to a second early).
    /// Formatted by hand: an `ISO8601DateFormatter` is built through ICU on each use, which
    /// cost more CPU than the rest of a tail object's PUT.
    static func isoDate(_ d: Date) -> String {
        SigV4.utcSeconds(d.timeIntervalSince1970.rounded(.up), compact: false)
    }

    public func put(bundle name: String, from staging: String, retainUntil: Date) throws {
        let until = Self.isoDate(max(retainUntil, Date().addingTimeInterval(minimumLock)))
        if try commit(of: name) != nil { throw AuditError("bundle \(name) already exists in \(client.place)") }
        try abortStaleUploads()
        var files: [Commit.File] = []
        for f in try FileOps.list(staging).sorted() {
            let bytes = try ArchiveFiles.read(staging + "/" + f)
            let sha = SHA256.hash(bytes).hex
            let version = try upload(key: key(name + "/" + f), bytes: bytes, sha256: sha, retainUntil: until)
            files.append(.init(name: f, size: bytes.count, sha256: sha, version_id: version))
        }
        if pauseBeforeCommit > 0 { Thread.sleep(forTimeInterval: pauseBeforeCommit) }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let body = Array(try enc.encode(Commit(bundle: name, retain_until: until, files: files))) + [0x0A]
        var headers = lockHeaders(until, body)
        headers.append(("If-None-Match", "*"))
        headers.append(("x-amz-meta-sha256", SHA256.hash(body).hex))
        let r = try client.request("PUT", key: key(name + "/" + Self.commitFile), headers: headers, body: body)
        if r.status == 412 {
            throw AuditError(
                "bundle \(name) was committed by someone else meanwhile in \(client.place); it is never overwritten")
        }
        guard (200..<300).contains(r.status) else { throw client.failure("committing bundle \(name)", r) }
        // Staging is not needed once the store holds the bundle.
        for f in try FileOps.list(staging) { try FileOps.unlink(staging + "/" + f) }
        _ = rmdir(staging)
    }

    func lockHeaders(_ until: String, _ body: [UInt8]) -> [(String, String)] {
        [
            ("x-amz-object-lock-mode", "COMPLIANCE"), ("x-amz-object-lock-retain-until-date", until),
            ("Content-MD5", S3Client.contentMD5(body)),
        ]
    }

    /// Puts one object (multipart above `partSize`), locked until `retainUntil`; its version id.
    func upload(key: String, bytes: [UInt8], sha256: String, retainUntil: String) throws -> String? {
        let meta = [("x-amz-meta-sha256", sha256)]
        if bytes.count <= partSize {
            // The S3 checksum too: stores that support it (AWS) check it and keep it with the object.
            let checksum = ("x-amz-checksum-sha256", Data(SHA256.hash(bytes).bytes).base64EncodedString())
            let r = try client.expect(
                "uploading \(key)", "PUT", key: key, headers: lockHeaders(retainUntil, bytes) + meta + [checksum],
                body: bytes)
            return r.headers["x-amz-version-id"]
        }
        let start = try client.expect(
            "starting the multipart upload of \(key)", "POST", key: key, query: [("uploads", "")],
            headers: [("x-amz-object-lock-mode", "COMPLIANCE"), ("x-amz-object-lock-retain-until-date", retainUntil)]
                + meta)
        guard let id = S3XML.values("UploadId", in: start.text).first else {
            throw AuditError("the store gave no UploadId for \(key)")
        }
        do {
            var etags: [String] = []
            var part = 1
            var at = 0
            while at < bytes.count {
                let chunk = Array(bytes[at..<min(bytes.count, at + partSize)])
                let r = try client.expect(
                    "uploading part \(part) of \(key)", "PUT", key: key,
                    query: [("partNumber", String(part)), ("uploadId", id)],
                    headers: [("Content-MD5", S3Client.contentMD5(chunk))], body: chunk)
                etags.append(r.headers["etag"] ?? "")
                at += chunk.count
                part += 1
            }
            let xml =
                "<CompleteMultipartUpload>"
                + etags.enumerated().map {
                    "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\($0.element)</ETag></Part>"
                }.joined() + "</CompleteMultipartUpload>"
            let done = try client.expect(
                "completing the multipart upload of \(key)", "POST", key: key, query: [("uploadId", id)],
                body: Array(xml.utf8))
            // A 200 may still carry an error (S3 reports late failures in the body).
            if S3XML.values("Code", in: done.text).first != nil {
                throw client.failure("completing the multipart upload of \(key)", done)
            }
            return done.headers["x-amz-version-id"]
        } catch {
            _ = try? client.request("DELETE", key: key, query: [("uploadId", id)])
            throw error
        }
    }

    /// Multipart uploads under the prefix that were started and never completed (a crash
    /// mid-upload) are aborted, so their parts do not linger.
    @discardableResult
    public func abortStaleUploads() throws -> Int {
        let r = try client.expect(
            "listing unfinished uploads", "GET", key: nil, query: [("uploads", ""), ("prefix", key(""))])
        var n = 0
        for u in S3XML.blocks("Upload", in: r.text) {
            guard let k = S3XML.values("Key", in: u).first, let id = S3XML.values("UploadId", in: u).first else {
                continue
            }
            try client.expect("aborting the unfinished upload of \(k)", "DELETE", key: k, query: [("uploadId", id)])
            n += 1
        }
        return n
    }

    /// The first version of object `k` (nil when the store holds none). Some stores (Ceph 16)
    /// ignore `If-None-Match` and version a second PUT; the first version, locked, is the one
    /// that counts. Delete markers are never versions of content: a plain DELETE under a
    /// COMPLIANCE lock adds one, hides the latest object, and deletes nothing.
    func firstVersion(of k: String) throws -> String? {
        try versions(prefix: k).last { $0.key == k && !$0.deleteMarker }?.version
    }

    /// The bundle's commit: the first version of its commit object.
    func commit(of name: String) throws -> Commit? {
        let k = key(name + "/" + Self.commitFile)
        guard let first = try firstVersion(of: k) else { return nil }
        let r = try client.request("GET", key: k, query: [("versionId", first)])
        if r.status == 404 { return nil }
        guard r.status == 200 else { throw client.failure("reading the commit of bundle \(name)", r) }
        if let want = r.headers["x-amz-meta-sha256"], want != SHA256.hash(r.body).hex {
            throw BundleError(
                file: key(name + "/" + Self.commitFile), reason: "its bytes do not match the SHA-256 it was stored with"
            )
        }
        do { return try JSONDecoder().decode(Commit.self, from: Data(r.body)) } catch {
            throw BundleError(file: key(name + "/" + Self.commitFile), reason: "malformed: \(error)")
        }
    }

    /// The bundles whose commit object has a version (a delete marker over it changes nothing).
    public func list() throws -> [String] {
        let suffix = "/" + Self.commitFile
        var out: Set<String> = []
        for v in try versions(prefix: key("bundle-")) where !v.deleteMarker && v.key.hasSuffix(suffix) {
            let name = String(v.key.dropFirst(key("").count).dropLast(suffix.count))
            if name.hasPrefix("bundle-"), !name.contains("/") { out.insert(name) }
        }
        return out.sorted()
    }

    /// Downloads the bundle's committed versions into the cache (or reuses a copy there whose
    /// files all hash to the commit), each checked against the SHA-256 its commit names, and
    /// returns the directory (verified from scratch by the caller).
    public func path(of name: String) throws -> String {
        guard let c = try commit(of: name) else {
            throw AuditError("bundle \(name) is not in the archive \(client.place)")
        }
        let dir = cache + "/" + name
        // A copy downloaded before is reused when every file still hashes to the commit.
        if c.files.allSatisfy({ f in
            (try? FileOps.readFile(dir + "/" + f.name, limit: 1 << 30)).map {
                SHA256.hash($0).hex == f.sha256 && $0.count == f.size
            } ?? false
        }),
            Set((try? FileOps.list(dir)) ?? []) == Set(c.files.map(\.name))
        {
            return dir
        }
        let tmp = cache + "/.download-" + name
        try? removeTree(tmp)
        try FileOps.makeDirectory(tmp)
        for f in c.files {
            guard !f.name.contains("/"), !f.name.hasPrefix(".") else {
                throw BundleError(file: name, reason: "its commit names a file '\(f.name)'")
            }
            let r = try client.expect(
                "downloading \(name)/\(f.name)", "GET", key: key(name + "/" + f.name),
                query: f.version_id.map { [("versionId", $0)] } ?? [])
            guard SHA256.hash(r.body).hex == f.sha256, r.body.count == f.size else {
                throw BundleError(
                    file: key(name + "/" + f.name),
                    reason: "the bytes downloaded do not match the SHA-256 the bundle was committed with")
            }
            try FileOps.replaceFile(tmp + "/" + f.name, contents: r.body)
        }
        try? removeTree(dir)
        try FileOps.rename(tmp, dir)
        return dir
    }

    /// Deletes every version of the bundle's objects. The store refuses while its lock lasts:
    /// that refusal is the second line of defence, counted and reported, never retried here.
    public func remove(bundle name: String) throws {
        var refused: [String] = []
        for v in try versions(prefix: key(name + "/")) {
            let r = try client.request("DELETE", key: v.key, query: [("versionId", v.version)])
            if r.status == 403 || r.code == "AccessDenied" {
                refused.append(v.key)
            } else if !(200..<300).contains(r.status) {
                throw client.failure("deleting \(v.key)", r)
            }
        }
        try? removeTree(cache + "/" + name)
        if !refused.isEmpty {
            refusedDeletes += 1
            throw ArchiveLockRefusal(bundle: name, objects: refused.count, until: try? lockedUntil(bundle: name))
        }
    }

    /// Every version and delete marker under `prefix` (a key prefix, the archive's own
    /// included); each key's versions newest first.
    public func versions(prefix: String) throws -> [(key: String, version: String, deleteMarker: Bool, modified: Date?)]
    {
        var out: [(key: String, version: String, deleteMarker: Bool, modified: Date?)] = []
        var marker: (String, String)?
        repeat {
            var q = [("versions", ""), ("prefix", prefix)]
            if let (k, v) = marker { q += [("key-marker", k), ("version-id-marker", v)] }
            let r = try client.expect("listing object versions", "GET", key: nil, query: q)
            for (tag, isMarker) in [("Version", false), ("DeleteMarker", true)] {
                for b in S3XML.blocks(tag, in: r.text) {
                    if let k = S3XML.values("Key", in: b).first, let v = S3XML.values("VersionId", in: b).first {
                        out.append((k, v, isMarker, S3XML.values("LastModified", in: b).first.flatMap(Self.parseDate)))
                    }
                }
            }
            marker =
                S3XML.values("IsTruncated", in: r.text).first == "true"
                ? S3XML.values("NextKeyMarker", in: r.text).first.flatMap { k in
                    S3XML.values("NextVersionIdMarker", in: r.text).first.map { (k, $0) }
                } : nil
        } while marker != nil
        return out
    }

    /// An S3 date (ISO 8601, with or without fractional seconds).
    static func parseDate(_ t: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: t) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: t)
    }

    public func lockedUntil(bundle name: String) throws -> Date? {
        let k = key(name + "/" + Self.commitFile)
        guard let first = try firstVersion(of: k) else { return nil }
        let r = try client.request("HEAD", key: k, query: [("versionId", first)])
        guard r.status == 200, let t = r.headers["x-amz-object-lock-retain-until-date"] else { return nil }
        return Self.parseDate(t)
    }

    public func setLegalHold(bundle name: String, on: Bool) throws {
        guard let c = try commit(of: name) else {
            throw AuditError("bundle \(name) is not in the archive \(client.place)")
        }
        let body = Array(
            "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>\(on ? "ON" : "OFF")</Status></LegalHold>"
                .utf8)
        var targets = c.files.map { (key(name + "/" + $0.name), $0.version_id) }
        targets.append((key(name + "/" + Self.commitFile), nil))
        for (k, v) in targets {
            try client.expect(
                "\(on ? "placing" : "lifting") the legal hold on \(k)", "PUT", key: k,
                query: [("legal-hold", "")] + (v.map { [("versionId", $0)] } ?? []),
                headers: [("Content-MD5", S3Client.contentMD5(body))], body: body)
        }
    }

    /// True if the store holds a legal hold on the bundle's commit object.
    public func legalHold(bundle name: String) throws -> Bool {
        let r = try client.request("GET", key: key(name + "/" + Self.commitFile), query: [("legal-hold", "")])
        return r.status == 200 && S3XML.values("Status", in: r.text).first == "ON"
    }

    public func stagingDirectory() throws -> String {
        let p = cache + "/.staging-" + Array(try Ed25519.randomSeed().prefix(6)).hex
        try FileOps.makeDirectory(p)
        return p
    }

    func removeTree(_ p: String) throws {
        guard FileOps.exists(p) else { return }
        for f in (try? FileOps.list(p)) ?? [] { try FileOps.unlink(p + "/" + f) }
        _ = rmdir(p)
    }
}

/// The object store refused to delete a bundle because its own lock has not ended.
public struct ArchiveLockRefusal: Error, CustomStringConvertible {
    public var bundle: String
    public var objects: Int
    public var until: Date?
    public var description: String {
        "the object store refused to delete \(objects) object(s) of \(bundle): its Object Lock holds them\(until.map { " until \(S3Backend.isoDate($0))" } ?? "") (the store's second line of defence)"
    }
}
