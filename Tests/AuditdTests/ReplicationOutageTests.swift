import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 21: the object store goes away under load (a proxy in front of the Ceph gateway cuts
/// every connection and refuses new ones) and comes back. In local mode ingest goes on, the
/// lag shows, and the backlog drains; in replicated mode writers are told, nothing is acked
/// that the bucket does not hold.
@Suite(.serialized) struct ReplicationOutageTests {
    /// The gateway behind a proxy that `flag` turns off: auditd's environment for it, the
    /// bucket, the proxy.
    static func storeBehindProxy(flag: String) throws -> ([String: String], String, LoopbackScript) {
        let (env, bucket) = try S3ArchiveDaemonTests.store()
        guard let endpoint = env["AWS_ENDPOINT_URL_S3"], let upstream = URL(string: endpoint)?.port else {
            throw DaemonFailed(message: "the gateway's endpoint has no port: \(env)")
        }
        let proxy = try LoopbackScript("outage_proxy.py", [String(upstream), flag])
        var e = env
        e["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:\(proxy.port)"
        return (e, bucket, proxy)
    }

    static func replication(_ d: Daemon) async throws -> [String: Any] {
        (try await d.json("/healthz", token: nil)["replication"] as? [String: Any]) ?? [:]
    }

    @Test func localModeIngestsThroughAnOutageAndTheBacklogDrains() async throws {
        let seconds = Int(ProcessInfo.processInfo.environment["AUDITLOG_OUTAGE_SECONDS"] ?? "") ?? 60
        let flag = NSTemporaryDirectory() + "outage-\(UUID().uuidString.prefix(8))"
        let (env, bucket, proxy) = try Self.storeBehindProxy(flag: flag)
        defer { proxy.stop() }
        let d = Daemon(
            "outage",
            args: [
                "--archive", "s3://\(bucket)/o", "--segment-bytes", "100000", "--tail-interval-ms", "200",
            ])
        d.environment = env
        defer { d.cleanup() }
        try d.start()
        func batch(_ k: Int) -> String {
            (0..<200).map { event(org: "org_\($0 % 3)", i: k * 200 + $0) }.joined(separator: "\n") + "\n"
        }
        #expect(try d.ctl(["append", "--socket", d.socket], stdin: batch(0)).0 == 0)
        // The store goes away; writers go on being acknowledged (local mode).
        FileManager.default.createFile(atPath: flag, contents: nil)
        let start = ContinuousClock.now
        var k = 1
        var maxLag = 0
        var degraded = false
        while ContinuousClock.now - start < .seconds(seconds) {
            let (s, _, err) = try await d.ctlOffPool(["append", "--socket", d.socket], stdin: batch(k))
            #expect(s == 0, "an append during the outage: \(err)")
            k += 1
            let h = try await d.json("/healthz", token: nil)
            let r = h["replication"] as? [String: Any] ?? [:]
            maxLag = max(maxLag, r["lag_entries"] as? Int ?? 0)
            if h["status"] as? String == "degraded", h["replication_failing"] != nil { degraded = true }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(degraded, "/healthz says degraded while the store cannot be reached")
        #expect(maxLag >= 200 * (k - 2), "the lag grew with what was written (\(maxLag) after \(k) batches)")
        // The store comes back: the backlog drains, the lag returns to zero.
        try FileManager.default.removeItem(atPath: flag)
        var r: [String: Any] = [:]
        for _ in 0..<300 {
            r = try await Self.replication(d)
            if r["lag_entries"] as? Int == 0, r["failing"] == nil, (r["published_size"] as? Int ?? 0) >= 200 * k {
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(r["lag_entries"] as? Int == 0, "the backlog drained: \(r)")
        #expect(r["replicated_end"] as? Int == 200 * k, "\(r)")
        #expect((r["published_size"] as? Int ?? 0) >= 200 * k, "a checkpoint of everything is published: \(r)")
        let (_, metrics) = try await d.http("/metrics", token: nil)
        #expect(String(decoding: metrics, as: UTF8.self).contains("auditd_replication_lag_entries 0"))
        #expect(d.stop() == 0)
        // Nothing was lost: the bucket alone gives back every entry.
        let (rs, rout, rerr) = try d.ctl([
            "recover", d.root + "/from-bucket", "--archive", "s3://\(bucket)/o", "--key",
            d.root + "/auditd-keys/data.key",
        ])
        #expect(rs == 0 && rout.contains("recovered \(200 * k) entries"), "\(rout)\(rerr)")
        print(
            "outage of \(seconds) s in local mode: \(200 * k) entries written, lag at most \(maxLag) entries, drained")
    }

    @Test func replicatedModeTellsWritersAndAcksNothingTheBucketLacks() async throws {
        let flag = NSTemporaryDirectory() + "outage-\(UUID().uuidString.prefix(8))"
        let (env, bucket, proxy) = try Self.storeBehindProxy(flag: flag)
        defer { proxy.stop() }
        let d = Daemon(
            "outage-r",
            args: [
                "--archive", "s3://\(bucket)/o", "--ack", "replicated", "--replication-wait", "2",
                "--tail-interval-ms", "100",
            ])
        d.environment = env
        defer { d.cleanup() }
        try d.start()
        let one = event(org: "org_a", i: 0, key: "k0") + "\n"
        #expect(try d.ctl(["append", "--socket", d.socket], stdin: one).0 == 0)
        FileManager.default.createFile(atPath: flag, contents: nil)
        try await Task.sleep(for: .milliseconds(300))
        // Waiting past replication_wait: stored here, not acknowledged, and said so (or, when a
        // failed upload already showed the store gone that long, refused before it is stored).
        let (s1, o1, e1) = try await d.ctlOffPool(
            ["append", "--socket", d.socket], stdin: event(org: "org_a", i: 1, key: "k1") + "\n")
        let stored = (e1 + o1).contains("not acknowledged")
        #expect(s1 != 0 && (stored || (e1 + o1).contains("writes are refused")), "\(o1)\(e1)")
        try await Task.sleep(for: .milliseconds(500))
        // After that long without the store, appends are refused before anything is stored.
        let (s2, o2, e2) = try await d.ctlOffPool(
            ["append", "--socket", d.socket], stdin: event(org: "org_a", i: 2, key: "k2") + "\n")
        #expect(s2 != 0 && (e2 + o2).contains("writes are refused"), "\(o2)\(e2)")
        let h = try await d.json("/healthz", token: nil)
        #expect(h["status"] as? String == "degraded", "\(h)")
        // The store comes back: the refusal ends although nothing waits to go up, and the first
        // entry is acknowledged on a resend with its key (once, if it was stored).
        try FileManager.default.removeItem(atPath: flag)
        var ok = false
        for _ in 0..<100 {
            let (s3, o3, _) = try await d.ctlOffPool(
                ["append", "--socket", d.socket], stdin: event(org: "org_a", i: 1, key: "k1") + "\n")
            if s3 == 0 {
                #expect(o3.contains("\"duplicate\":\(stored)"), "the first send was stored: \(stored); \(o3)")
                ok = true
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(ok, "the resend is acknowledged once the store is back")
        var r: [String: Any] = [:]
        for _ in 0..<100 {
            r = try await Self.replication(d)
            if r["lag_entries"] as? Int == 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(r["lag_entries"] as? Int == 0, "\(r)")
    }
}
