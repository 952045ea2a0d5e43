import Archive
import Foundation
import TestSupport
import Testing

/// Issue 12 through the binaries: auditd archives into a Ceph bucket with Object Lock, an
/// archivist lists, verifies and restores with auditctl alone; a bucket without the lock stops
/// the start with the setting named; an unreachable store leaves ingest running and /healthz
/// degraded. The gateway is TestSupport's ObjectStore (scripts/ceph-rgw on loopback).
@Suite(.serialized) struct S3ArchiveDaemonTests {
    /// auditd's and auditctl's environment for the gateway, and a new bucket.
    static func store(lock: Bool = true) throws -> (env: [String: String], bucket: String) {
        let env = try ObjectStore.clientEnvironment()
        let bucket = "auditd-\(lock ? "locked" : "plain")-\(UUID().uuidString.prefix(8).lowercased())"
        let c = S3Client(try S3Settings(url: "s3://\(bucket)", environment: env))
        try c.expect(
            "creating bucket \(bucket)", "PUT", key: nil,
            headers: lock ? [("x-amz-bucket-object-lock-enabled", "true")] : [])
        return (env, bucket)
    }

    @Test func anArchivistRestoresFromTheBucketWithAuditctlAlone() async throws {
        let (env, bucket) = try Self.store()
        let url = "s3://\(bucket)/log1"
        let d = Daemon(
            "s3", args: ["--hot-window", "0", "--archive-interval", "1", "--segment-bytes", "20000", "--archive", url])
        d.environment = env
        defer { d.cleanup() }
        try d.start()
        var input = ""
        for i in 0..<300 {
            input +=
                event(
                    org: i % 2 == 0 ? "org_a" : "org_b", i: i,
                    extra: #","pad":"\#(String(repeating: "y", count: 200))""#) + "\n"
        }
        #expect(try d.ctl(["append", "--socket", d.socket], stdin: input).0 == 0)
        let ta = try d.token(org: "org_a")
        var archived: [[String: Any]] = []
        for _ in 0..<150 {
            archived =
                (try await d.json("/v1/orgs/org_a/entries?limit=1000", token: ta)["archived"] as? [[String: Any]]) ?? []
            if !archived.isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(!archived.isEmpty, "the daemon should have archived sealed segments into the bucket")
        let health = try await d.json("/healthz", token: nil)
        #expect(health["status"] as? String == "ok", "\(health)\n\(d.logTail())")
        #expect(d.stop() == 0)

        // The archivist: list, verify each bundle from the bucket, restore them all.
        let (ls, lout, lerr) = try d.ctl(["archive", "list", d.data, "--archive", url])
        #expect(ls == 0, "\(lerr)")
        #expect(lout.contains("archived") && !lout.contains("MISSING"), "\(lout)")
        let (vs, vout, verr) = try d.ctl(["archive", "verify", d.data, "--archive", url])
        #expect(vs == 0, "\(vout)\(verr)")
        // A legal hold in the log is placed on the bucket's objects too.
        let (hs, hout, herr) = try d.ctl([
            "hold", "create", d.data, "--org", "org_a", "--reason", "subpoena 7", "--authority", "GC", "--archive", url,
        ])
        #expect(hs == 0, "\(hout)\(herr)")
        #expect(hout.contains("legal holds now follow"), "\(hout)")
        let backend = try S3Backend(try S3Settings(url: url, environment: env), cache: d.root + "/s3cache")
        let bundles = try backend.list()
        #expect(!bundles.isEmpty)
        #expect(try bundles.allSatisfy { try backend.legalHold(bundle: $0) })
        let (rs, rout, rerr) = try d.ctl(["archive", "restore", d.data, "--all", "--archive", url])
        #expect(rs == 0, "\(rout)\(rerr)")
        let (ks, kout, _) = try d.ctl(["verify", d.data, "--quiet"])
        #expect(ks == 0, "\(kout)")
    }

    @Test func aBucketWithoutObjectLockStopsTheStartAndAnUnreachableStoreDoesNot() async throws {
        let (env, bucket) = try Self.store(lock: false)
        let d = Daemon("s3-plain", args: ["--archive", "s3://\(bucket)"])
        d.environment = env
        defer { d.cleanup() }
        #expect(throws: DaemonFailed.self) { try d.start() }
        let (status, out) = try runProgram(
            Daemon.product("auditd"),
            ["--data", d.data, "--socket", d.socket, "--http-port", "0", "--archive", "s3://\(bucket)"],
            environment: ProcessInfo.processInfo.environment.merging(env) { $1 })
        #expect(out.contains("Object Lock") || out.contains("versioning"), "\(out)")
        // The bucket's state, not the command line: exit 1 without the usage text (64, EX_USAGE,
        // would tell a supervisor the unit is misconfigured).
        #expect(status == 1 && !out.contains("Usage:"), "exit status \(status):\n\(out)")

        // Unreachable: ingest goes on, health says degraded and why.
        var away = env
        away["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:9"
        let u = Daemon("s3-away", args: ["--archive", "s3://\(bucket)", "--archive-interval", "1"])
        u.environment = away
        defer { u.cleanup() }
        try u.start()
        #expect(try u.ctl(["append", "--socket", u.socket], stdin: event(org: "org_a", i: 1) + "\n").0 == 0)
        let (code, body) = try await u.http("/healthz", token: nil)
        let h = try JSONSerialization.jsonObject(with: body) as? [String: Any]
        #expect(code == 200 && h?["status"] as? String == "degraded", "\(String(decoding: body, as: UTF8.self))")
        #expect((h?["archive"] as? String)?.contains("cannot be reached") == true)
        #expect(u.stop() == 0)
    }
}
