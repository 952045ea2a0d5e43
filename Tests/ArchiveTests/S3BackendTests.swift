import AuditBase
import AuditEntries
import ChainIndex
import Foundation
import LogProofs
import SegmentStore
import TestSupport
import Testing
import Verification

@testable import Archive

/// Issue 12: the S3 archive backend against a real object store, a single-node Ceph RADOS
/// Gateway on loopback (TestSupport's ObjectStore starts it with `scripts/ceph-rgw`).
@Suite(.serialized) struct S3BackendTests {
    /// The gateway's settings for `bucket`, or a failure that says how to start one.
    static func settings(bucket: String, secret: String? = nil, endpoint: String? = nil) throws -> S3Settings {
        var env = try ObjectStore.clientEnvironment()
        if let secret { env["AWS_SECRET_ACCESS_KEY"] = secret }
        if let endpoint { env["AWS_ENDPOINT_URL_S3"] = endpoint }
        return try S3Settings(url: "s3://\(bucket)/archive", environment: env)
    }

    /// A new bucket, with Object Lock (which turns versioning on) unless `lock` is false.
    static func bucket(lock: Bool = true) throws -> (String, S3Client) {
        let name = "auditlog-\(lock ? "locked" : "plain")-\(UUID().uuidString.prefix(8).lowercased())"
        let c = S3Client(try settings(bucket: name))
        try c.expect(
            "creating bucket \(name)", "PUT", key: nil,
            headers: lock ? [("x-amz-bucket-object-lock-enabled", "true")] : [])
        return (name, c)
    }

    /// A fresh cache directory for a backend; the caller removes it.
    static func cache() -> String { NSTemporaryDirectory() + "s3cache-\(UUID().uuidString.prefix(8))" }

    @Test func aBucketWithoutObjectLockIsRefusedByName() throws {
        let (name, _) = try Self.bucket(lock: false)
        let cache = Self.cache()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let e = #expect(throws: AuditError.self) {
            try S3Backend(try Self.settings(bucket: name), cache: cache)
        }
        #expect("\(e.map { "\($0)" } ?? "")".contains("versioning"))
        // Versioning alone is not enough: Object Lock is named.
        let c = S3Client(try Self.settings(bucket: name))
        try c.expect(
            "enabling versioning", "PUT", key: nil, query: [("versioning", "")],
            body: Array(
                "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status></VersioningConfiguration>"
                    .utf8))
        let e2 = #expect(throws: AuditError.self) {
            try S3Backend(try Self.settings(bucket: name), cache: cache)
        }
        #expect("\(e2.map { "\($0)" } ?? "")".contains("Object Lock"))
    }

    @Test func wrongCredentialsAndAnUnreachableStoreSaySo() throws {
        let (name, _) = try Self.bucket()
        let cache = Self.cache()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let e = #expect(throws: S3Error.self) {
            try S3Backend(try Self.settings(bucket: name, secret: "not-the-secret"), cache: cache)
        }
        #expect(e?.message.contains("refused the credentials") == true, "\(e.map { "\($0)" } ?? "")")
        var s = try Self.settings(bucket: name, endpoint: "http://127.0.0.1:9")
        s.pathStyle = true
        let c = S3Client(s)
        c.attempts = 2
        let e2 = #expect(throws: S3Error.self) { try c.request("GET", key: nil) }
        #expect(e2?.message.contains("cannot be reached") == true)
    }

    /// Archive into the bucket, verify from the downloaded copy, restore, and find the store
    /// itself refusing an early delete, even to the log's own credentials.
    @Test func archiveVerifyRestoreAndTheStoreRefusesAnEarlyDelete() throws {
        let (root, _, l, signer) = try ArchiveTests().makeLog()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (bucket, client) = try Self.bucket()
        let backend = try S3Backend(try Self.settings(bucket: bucket), cache: Self.cache())
        defer { try? FileManager.default.removeItem(atPath: backend.cache) }
        let clock = ArchiveTests.Clock("2023-01-01T00:00:00Z")
        let c = clock
        let archiver = Archiver(ledger: l, backend: backend, clock: { c.now })
        let names = try archiver.run(hotWindow: 30 * 86400)
        #expect(names.count == 3)
        #expect(try backend.list() == names)
        // Each bundle verifies from what the store gives back, from scratch.
        for n in names {
            let m = try ArchiveBundle.verify(directory: try backend.path(of: n), verifier: LogKeys(signer.verifier))
            #expect(m.segment == UInt64(names.firstIndex(of: n) ?? -1))
        }
        // Locked in COMPLIANCE mode until the bundle's retention ends: 2020-06 entries + 7 years.
        let until = try #require(try backend.lockedUntil(bundle: names[1]))
        #expect(Timestamp.format(Int64(until.timeIntervalSince1970 * 1000)).hasPrefix("2027-06-01"))
        let head = try client.request("HEAD", key: "archive/\(names[1])/segment.seg")
        #expect(head.headers["x-amz-object-lock-mode"] == "COMPLIANCE")
        #expect(head.headers["x-amz-meta-sha256"]?.count == 64)

        // An operator with the log's keys tries to delete a bundle early: the store says no.
        let versions = try backend.versions(prefix: "archive/\(names[0])/")
        #expect(!versions.isEmpty)
        let v = try #require(versions.first { $0.key.hasSuffix("segment.seg") })
        let del = try client.request("DELETE", key: v.key, query: [("versionId", v.version)])
        #expect(del.status == 403, "the store let a locked object go: \(del.status) \(del.text)")
        #expect(throws: ArchiveLockRefusal.self) { try backend.remove(bundle: names[0]) }
        #expect(try backend.path(of: names[0]).isEmpty == false, "the bundle is still whole")

        // Issue 18 item 15: a plain DELETE (no version id) is allowed under the lock and deletes
        // nothing; the delete marker it leaves hides no bundle from list, verify or restore.
        let commitKey = "archive/\(names[0])/\(S3Backend.commitFile)"
        let plain = try client.request("DELETE", key: commitKey)
        #expect((200..<300).contains(plain.status), "\(plain.status) \(plain.text)")
        #expect(try client.request("HEAD", key: commitKey).status != 200, "the marker hides the latest object")
        #expect(try backend.versions(prefix: commitKey).contains { $0.deleteMarker })
        #expect(try backend.list() == names, "a delete marker made a locked bundle look missing")
        // Downloaded again, past the marker.
        try? FileManager.default.removeItem(atPath: backend.cache + "/" + names[0])
        _ = try ArchiveBundle.verify(directory: try backend.path(of: names[0]), verifier: LogKeys(signer.verifier))
        #expect(try backend.lockedUntil(bundle: names[0]) != nil)

        // Years later by the log's clock, retention is over for segment 0; the store's lock
        // (by real time) still holds, so the purge keeps it and says why.
        clock.now = ArchiveTests.date("2027-06-02T00:00:00Z")
        let plan = try archiver.plan(policy: RetentionPolicy(), holds: [])
        #expect(plan[0].eligible == false)
        #expect(plan[0].reasons.contains { $0.contains("Object Lock keeps it until") }, "\(plan[0].reasons)")
        #expect(try archiver.purge(policy: RetentionPolicy(), holds: []) { _ in }.isEmpty)

        // A legal hold is placed on the objects as well as in the log.
        try backend.setLegalHold(bundle: names[2], on: true)
        #expect(try backend.legalHold(bundle: names[2]))

        // Restore: downloaded, verified from scratch, installed; the entries read again and
        // the whole log verifies.
        let seg1 = try #require(l.segments().first { $0.segment == 1 })
        #expect(throws: AuditError.self) { try l.entry(seq: seg1.firstSeq) }
        let m = try Archiver.restore(
            dataDir: l.directory, backend: backend, verifier: LogKeys(signer.verifier), bundle: names[1])
        #expect(m.segment == 1)
        try l.store.reinstateReturned()
        try l.index.refreshRestored(l.segments())
        #expect(try l.entry(seq: seg1.firstSeq).seq == seg1.firstSeq)
        #expect(try l.search(org: "org_c", limit: 100).entries.count == 20)
        try l.close()
        #expect(try Verifier(directory: l.directory, key: LogKeys(signer.verifier)).run().ok)
    }

    /// History older than its retention: the bundle is locked only briefly (the store wants a
    /// date ahead); once that lock ends, the log's purge deletes every version from the store,
    /// leaves a signed tombstone, and the log still verifies.
    @Test func aPurgeAfterRetentionDeletesFromTheStore() throws {
        let root = NSTemporaryDirectory() + "s3purge-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let signer = try NoteSigner.generate(name: "audit.test/log")
        var o = LedgerOptions()
        o.retired = ArchiveTier()
        o.background = false
        let l = try Ledger(directory: root + "/data", signer: signer, options: o)
        let t = Timestamp.parse("2018-01-01T00:00:00Z") ?? 0
        _ = try l.appendAndWait(
            (0..<30).map { i in
                try Entry.prepare(
                    json: Array(
                        #"{"org":"org_old","category":"access","action":"access.granted","actor":{"type":"human","id":"u"},"target":{"type":"p","id":"p\#(i)"},"outcome":"success","source":{"service":"svc"},"occurred_at":"2018-01-01T00:00:00Z"}"#
                            .utf8),
                    receivedAt: t + Int64(i), writer: Writer(uid: 0, gid: 0, via: "test"))
            })
        try l.sealNow()
        let (bucket, _) = try Self.bucket()
        let backend = try S3Backend(try Self.settings(bucket: bucket), cache: Self.cache())
        defer { try? FileManager.default.removeItem(atPath: backend.cache) }
        backend.minimumLock = 3
        let archiver = Archiver(ledger: l, backend: backend)
        let names = try archiver.run(hotWindow: 86400)
        #expect(names.count == 1)
        #expect(
            try archiver.plan(policy: RetentionPolicy(), holds: []).first?.eligible == false,
            "the store's lock still holds")
        Thread.sleep(forTimeInterval: 4)
        var audited = 0
        let purged = try archiver.purge(policy: RetentionPolicy(), holds: []) { audited += $0.count }
        #expect(purged.map(\.bundle) == names && audited == 1)
        #expect(try backend.list().isEmpty)
        #expect(try backend.versions(prefix: "archive/").isEmpty, "every version is gone from the store")
        try l.close()
        #expect(try Verifier(directory: l.directory, key: LogKeys(signer.verifier)).run().ok)
    }

    /// A bundle whose lock has ended is deleted, every version; one uploaded in parts (multipart)
    /// reads back byte for byte; an upload a crash left unfinished is aborted on the next put.
    @Test func afterTheLockEndsABundleGoesAndLargeFilesGoInParts() throws {
        let (bucket, client) = try Self.bucket()
        let backend = try S3Backend(try Self.settings(bucket: bucket), cache: Self.cache())
        defer { try? FileManager.default.removeItem(atPath: backend.cache) }
        backend.partSize = 5 << 20
        backend.minimumLock = 0
        // A crash mid-upload: a multipart upload started and never completed.
        let started = try client.expect(
            "starting an upload", "POST", key: "archive/bundle-00000000000000000009/segment.seg",
            query: [("uploads", "")])
        #expect(S3XML.values("UploadId", in: started.text).count == 1)

        let staging = try backend.stagingDirectory()
        var big = [UInt8](repeating: 0, count: 11 << 20)
        for i in stride(from: 0, to: big.count, by: 4096) { big[i] = UInt8(truncatingIfNeeded: i / 4096) }
        try FileOps.replaceFile(staging + "/segment.seg", contents: big)
        try FileOps.replaceFile(staging + "/manifest.json", contents: Array("{}".utf8))
        try backend.put(bundle: "bundle-00000000000000000007", from: staging, retainUntil: Date().addingTimeInterval(4))
        let open = try client.expect("listing uploads", "GET", key: nil, query: [("uploads", "")])
        #expect(S3XML.values("UploadId", in: open.text).isEmpty, "the unfinished upload was not aborted: \(open.text)")
        let dir = try backend.path(of: "bundle-00000000000000000007")
        #expect(try FileOps.readFile(dir + "/segment.seg", limit: 1 << 30) == big)
        // The cached copy is reused only while it hashes to the commit: damaged, it is fetched again.
        var damaged = big
        damaged[12345] ^= 1
        try FileOps.replaceFile(dir + "/segment.seg", contents: damaged)
        #expect(
            try FileOps.readFile(try backend.path(of: "bundle-00000000000000000007") + "/segment.seg", limit: 1 << 30)
                == big)
        // Never overwritten: a second put of the same bundle is refused.
        let again = try backend.stagingDirectory()
        try FileOps.replaceFile(again + "/manifest.json", contents: Array("{\"x\":1}".utf8))
        #expect(throws: AuditError.self) {
            try backend.put(bundle: "bundle-00000000000000000007", from: again, retainUntil: Date())
        }
        // Behind auditd's back: the commit object is written with If-None-Match: *, which
        // AWS answers 412; Ceph 16 ignores it and keeps a second version. Either way the
        // first, locked version is the one read.
        let body = Array("{}".utf8)
        let overwrite = try client.request(
            "PUT", key: "archive/bundle-00000000000000000007/bundle.commit",
            headers: [("If-None-Match", "*"), ("Content-MD5", S3Client.contentMD5(body))], body: body)
        #expect(overwrite.status == 412 || overwrite.status == 200, "\(overwrite.status) \(overwrite.text)")
        #expect(
            try FileOps.readFile(try backend.path(of: "bundle-00000000000000000007") + "/segment.seg", limit: 1 << 30)
                == big)

        #expect(throws: ArchiveLockRefusal.self) { try backend.remove(bundle: "bundle-00000000000000000007") }
        Thread.sleep(forTimeInterval: 5)
        try backend.remove(bundle: "bundle-00000000000000000007")
        #expect(try backend.list().isEmpty)
        #expect(try backend.versions(prefix: "archive/bundle-00000000000000000007/").isEmpty)
    }
}
