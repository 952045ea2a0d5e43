import AuditBase
import Foundation
import LogProofs
import SegmentStore

#if canImport(Glibc)
import Glibc
#endif

/// Where bundles live for seven years. A bundle is a named set of files; `put` must be durable
/// and atomic (a crash leaves the bundle whole or absent), `fetch` copies it out for checking.
public protocol ArchiveBackend: Sendable {
    /// Stores the files of directory `staging` as bundle `name`, durably and atomically.
    /// `retainUntil` is the end of the bundle's retention (its latest org's): a store with
    /// its own retention lock (S3 Object Lock) keeps the bundle at least that long.
    func put(bundle name: String, from staging: String, retainUntil: Date) throws
    /// The bundles present.
    func list() throws -> [String]
    /// A local directory holding bundle `name`'s files (the bundle itself for a local backend).
    func path(of name: String) throws -> String
    /// Removes bundle `name` (only purge calls this).
    func remove(bundle name: String) throws
    /// A scratch directory on the same volume, for staging a bundle.
    func stagingDirectory() throws -> String
    /// Until when the store itself refuses to delete bundle `name` (nil: it does not lock).
    func lockedUntil(bundle name: String) throws -> Date?
    /// Places (or lifts) the store's own legal hold on bundle `name`, beside the log's.
    func setLegalHold(bundle name: String, on: Bool) throws
    /// The bytes of bundle `name`'s manifest, without fetching the rest of the bundle.
    func manifest(of name: String) throws -> [UInt8]
    /// Whether bundle `name` is in the archive (committed), without fetching it.
    func contains(bundle name: String) throws -> Bool
}

extension ArchiveBackend {
    /// The bytes of bundle `name`'s manifest (unchecked: the caller verifies what it relies on).
    public func manifest(of name: String) throws -> [UInt8] {
        try ArchiveFiles.read(try path(of: name) + "/" + BundleFiles.manifest)
    }

    public func contains(bundle name: String) throws -> Bool { (try? path(of: name)) != nil }

    public func lockedUntil(bundle name: String) throws -> Date? { nil }
    public func setLegalHold(bundle name: String, on: Bool) throws {}
}

/// The backend an archive setting names: `s3://BUCKET[/PREFIX]` (credentials and endpoint from
/// the environment, see `S3Settings`) or a directory.
public enum ArchiveBackends {
    /// Where an S3 archive's bundles are downloaded to be verified: `AUDITLOG_S3_CACHE`, or
    /// `auditd-archive-cache` beside the data directory.
    public static func cache(forData dir: String) -> String {
        ProcessInfo.processInfo.environment["AUDITLOG_S3_CACHE"]
            ?? URL(fileURLWithPath: dir).standardizedFileURL.deletingLastPathComponent().path + "/auditd-archive-cache"
    }

    /// Opens `spec`; an S3 bucket is checked (Object Lock, versioning) unless `check` is false.
    public static func open(_ spec: String, dataDir: String, check: Bool = true) throws -> ArchiveBackend {
        if spec.hasPrefix("s3://") {
            return try S3Backend(try S3Settings(url: spec), cache: cache(forData: dataDir), check: check)
        }
        return try LocalDirectoryBackend(root: spec)
    }
}

/// The default backend: a directory, on any mounted (cold) volume.
public struct LocalDirectoryBackend: ArchiveBackend {
    /// The archive root.
    public let root: String

    /// The archive of data directory `dir` when none is given: `<parent>/auditd-archive`.
    public static func defaultRoot(forData dir: String) -> String {
        URL(fileURLWithPath: dir).standardizedFileURL.deletingLastPathComponent().path + "/auditd-archive"
    }

    /// A backend rooted at `root` (created if missing).
    public init(root: String) throws {
        self.root = root
        try FileOps.makeDirectory(root)
    }

    public func put(bundle name: String, from staging: String, retainUntil: Date) throws {
        // Every file was fsync'd when staged; the rename is the commit point.
        let dest = root + "/" + name
        guard !FileOps.exists(dest) else { throw AuditError("bundle \(name) already exists in \(root)") }
        try FileOps.fsyncDirectory(staging)
        try FileOps.rename(staging, dest)
        try FileOps.fsyncDirectory(root)
    }

    public func list() throws -> [String] {
        try FileOps.list(root).filter { $0.hasPrefix("bundle-") }.sorted()
    }

    public func path(of name: String) throws -> String {
        let p = root + "/" + name
        guard FileOps.exists(p) else { throw AuditError("bundle \(name) is not in the archive \(root)") }
        return p
    }

    public func remove(bundle name: String) throws {
        let p = try path(of: name)
        for f in try FileOps.list(p) {
            _ = chmod(p + "/" + f, 0o644)
            try FileOps.unlink(p + "/" + f)
        }
        guard rmdir(p) == 0 else { throw AuditError("cannot remove \(p): \(String(cString: strerror(errno)))") }
        try FileOps.fsyncDirectory(root)
    }

    public func stagingDirectory() throws -> String {
        let p = root + "/.staging-" + Array(try Ed25519.randomSeed().prefix(6)).hex
        try FileOps.makeDirectory(p)
        return p
    }
}

/// Whole-file reads of bundle files, failing with the file named.
package enum ArchiveFiles {
    package static func read(_ path: String) throws -> [UInt8] {
        do {
            guard let d = try FileOps.readFile(path, limit: 1 << 30) else {
                throw BundleError(file: path, reason: "missing")
            }
            return d
        } catch let e as AuditError {
            throw BundleError(file: path, reason: e.message)
        }
    }
}
