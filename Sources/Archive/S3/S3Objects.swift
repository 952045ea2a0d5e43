import AuditBase
import Foundation

/// Single objects beside the bundles, for what follows the log between seals (the tail and
/// its checkpoints, format-spec.md §12.6): each put once, locked, its SHA-256 kept with it; the
/// first version of a key is the one that counts, as for a bundle's commit.
extension S3Backend {
    /// The full key of object `name` (under the prefix), as messages name it.
    public func objectKey(_ name: String) -> String { key(name) }

    /// Puts object `name` (a key under the prefix) once, locked in COMPLIANCE mode until
    /// `lockedUntil`, with its SHA-256 as metadata and `If-None-Match: *`. A key that already
    /// holds these bytes (a retry after a lost answer) is success; other bytes are an error
    /// that names the key: it is never overwritten. `fresh` says no earlier attempt could have
    /// put the key (it skips reading the first version back after a success).
    public func putOnce(
        _ name: String, bytes: [UInt8], lockedUntil: Date, fresh: Bool = false, client c: S3Client? = nil
    ) throws {
        let client = c ?? self.client
        let k = key(name)
        var headers = lockHeaders(Self.isoDate(lockedUntil), bytes)
        headers.append(("If-None-Match", "*"))
        headers.append(("x-amz-meta-sha256", SHA256.hash(bytes).hex))
        let r = try client.request("PUT", key: k, headers: headers, body: bytes)
        if (200..<300).contains(r.status) {
            // A store that ignores If-None-Match (Ceph 16) made a second version: the first counts.
            guard !fresh, let first = try firstVersionBytes(name, client: client), first != bytes else { return }
            throw AuditError(
                "object \(k) in \(client.place) already held other bytes; the first version counts and is kept")
        }
        guard r.status == 412 else { throw client.failure("putting \(k)", r) }
        guard try firstVersionBytes(name, client: client) == bytes else {
            throw AuditError("object \(k) in \(client.place) already holds other bytes; it is never overwritten")
        }
    }

    /// The bytes of the first version of object `name` (nil when it has none), checked against
    /// the SHA-256 it was stored with.
    public func firstVersionBytes(_ name: String, client c: S3Client? = nil) throws -> [UInt8]? {
        let client = c ?? self.client
        let k = key(name)
        guard let first = try firstVersion(of: k) else { return nil }
        let r = try client.request("GET", key: k, query: [("versionId", first)])
        if r.status == 404 { return nil }
        guard r.status == 200 else { throw client.failure("reading \(k)", r) }
        guard let want = r.headers["x-amz-meta-sha256"], want == SHA256.hash(r.body).hex else {
            throw BundleError(file: k, reason: "its bytes do not match the SHA-256 it was stored with")
        }
        return r.body
    }

    /// The first version of content of each name below `folder` (one listing for them all).
    public func firstVersions(under folder: String) throws -> [String: String] {
        let p = key("")
        var first: [String: String] = [:]
        // Each key's versions come newest first: the last one seen is the first put.
        for v in try versions(prefix: key(folder)) where !v.deleteMarker {
            first[String(v.key.dropFirst(p.count))] = v.version
        }
        return first
    }

    /// Version `version` of object `name`, checked against the SHA-256 it was stored with.
    public func bytes(_ name: String, version: String) throws -> [UInt8] {
        let k = key(name)
        let r = try client.expect("reading \(k)", "GET", key: k, query: [("versionId", version)])
        guard let want = r.headers["x-amz-meta-sha256"], want == SHA256.hash(r.body).hex else {
            throw BundleError(file: k, reason: "its bytes do not match the SHA-256 it was stored with")
        }
        return r.body
    }

    /// The names (keys under the prefix) below `folder` that hold a version of content, sorted.
    /// A delete marker hides nothing here: the versions are listed, not the latest objects.
    public func objects(under folder: String) throws -> [String] {
        let p = key("")
        var out: Set<String> = []
        for v in try versions(prefix: key(folder)) where !v.deleteMarker {
            out.insert(String(v.key.dropFirst(p.count)))
        }
        return out.sorted()
    }

    /// The names (keys under the prefix) of the latest objects below `folder` that sort after
    /// `after`, in order, at most `limit` of them: a cheap look at what is new in a folder whose
    /// names sort as numbers. A name hidden by a delete marker is not listed here.
    public func names(under folder: String, after: String?, limit: Int = 1000) throws -> [String] {
        let p = key("")
        var out: [String] = []
        var token: String?
        repeat {
            var q = [("list-type", "2"), ("prefix", key(folder)), ("max-keys", String(min(1000, limit)))]
            if let token {
                q.append(("continuation-token", token))
            } else if let after {
                q.append(("start-after", key(after)))
            }
            let r = try client.expect("listing \(key(folder))", "GET", key: nil, query: q)
            for k in S3XML.values("Key", in: r.text) where k.hasPrefix(p) { out.append(String(k.dropFirst(p.count))) }
            token =
                S3XML.values("IsTruncated", in: r.text).first == "true"
                ? S3XML.values("NextContinuationToken", in: r.text).first : nil
        } while token != nil && out.count < limit
        return out
    }

    /// The names below `folder` with a version of content, and when their first version was put.
    public func objectDates(under folder: String) throws -> [(name: String, putAt: Date?)] {
        let p = key("")
        var first: [String: Date?] = [:]
        // Each key's versions come newest first: the last one seen is the first put.
        for v in try versions(prefix: key(folder)) where !v.deleteMarker {
            first[String(v.key.dropFirst(p.count))] = v.modified
        }
        return first.map { ($0.key, $0.value) }.sorted { $0.name < $1.name }
    }

    /// Deletes every version of object `name`; false when the store refused (its lock holds).
    public func deleteAllVersions(_ name: String) throws -> Bool {
        var refused = false
        for v in try versions(prefix: key(name)) where v.key == key(name) {
            let r = try client.request("DELETE", key: v.key, query: [("versionId", v.version)])
            if r.status == 403 || r.code == "AccessDenied" {
                refused = true
            } else if !(200..<300).contains(r.status) && r.status != 404 {
                throw client.failure("deleting \(v.key)", r)
            }
        }
        return !refused
    }

    /// Whether bundle `name`'s commit object has a version (nothing is downloaded).
    public func contains(bundle name: String) throws -> Bool {
        try firstVersion(of: key(name + "/" + Self.commitFile)) != nil
    }

    /// Bundle `name`'s manifest alone: the committed version, checked against its commit.
    public func manifest(of name: String) throws -> [UInt8] {
        guard let c = try commit(of: name), let f = c.files.first(where: { $0.name == BundleFiles.manifest }) else {
            throw AuditError("bundle \(name) is not in the archive \(client.place)")
        }
        let k = key(name + "/" + f.name)
        let r = try client.expect(
            "downloading \(k)", "GET", key: k, query: f.version_id.map { [("versionId", $0)] } ?? [])
        guard SHA256.hash(r.body).hex == f.sha256 else {
            throw BundleError(
                file: k, reason: "the bytes downloaded do not match the SHA-256 the bundle was committed with")
        }
        return r.body
    }

    /// Removes the downloaded copy of bundle `name` (once it was verified, the hot copy serves).
    public func evictCache(bundle name: String) {
        try? removeTree(cache + "/" + name)
    }
}
