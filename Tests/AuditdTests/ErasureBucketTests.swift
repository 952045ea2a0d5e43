import Archive
import Foundation
import TestSupport
import Testing

/// Where personal values must never go (format-spec.md §5.4.2): a log that commits them, with a
/// Ceph bucket as its second home (`--ack replicated`: every acknowledged entry is in a tail
/// object) and its archive tier (bundles), puts none of them into the bucket, before an
/// erasure or after it. Every version of every object is read back and searched, zstd frames
/// expanded; a value that is stored in the clear is found the same way, so the search sees.
@Suite(.serialized) struct ErasureBucketTests {
    @Test func noPersonalValueReachesTheBucketAndAnErasedOneIsNowhere() async throws {
        let (env, bucket) = try S3ArchiveDaemonTests.store()
        let prefix = "erase"
        let url = "s3://\(bucket)/\(prefix)"
        let d = Daemon(
            "erasure-bucket",
            args: [
                "--personal-fields", "commit", "--archive", url, "--ack", "replicated", "--segment-bytes", "20000",
                "--tail-interval-ms", "200", "--hot-window", "0", "--archive-interval", "1",
            ])
        d.environment = env
        defer { d.cleanup() }
        try d.start()
        let (s, _, err) = try await d.ctlOffPool(
            ["append", "--socket", d.socket], stdin: (0..<200).map(ErasureTests.event).joined(separator: "\n") + "\n")
        #expect(s == 0, "\(err)")
        let token = try d.token(org: "acme")
        var archived: [[String: Any]] = []
        for _ in 0..<150 {
            archived =
                (try await d.json("/v1/orgs/acme/entries?limit=10", token: token)["archived"] as? [[String: Any]]) ?? []
            if !archived.isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(!archived.isEmpty, "the daemon should have moved sealed segments into the bucket's archive tier")

        let (xs, xout, xerr) = try await d.ctlOffPool([
            "erase", d.data, "--org", "acme", "--subject", "usr_ann", "--reason", "PRIV-2", "--authority", "DPO",
        ])
        #expect(xs == 0 && xout.contains("recorded as entry"), "\(xout) \(xerr)")
        // Bob's entries after it (an entry of Ann's now would give her a new key: the erasure
        // covers what was written before it).
        let (s2, _, err2) = try await d.ctlOffPool(
            ["append", "--socket", d.socket],
            stdin: (200..<220).filter { $0 % 2 == 1 }.map(ErasureTests.event).joined(separator: "\n") + "\n")
        #expect(s2 == 0, "\(err2)")
        #expect(d.stop() == 0)

        // Every version of every object under the log's prefix: tails, checkpoints, bundles.
        let backend = try S3Backend(try S3Settings(url: url, environment: env), cache: d.root + "/s3cache")
        let client = S3Client(try S3Settings(url: "s3://\(bucket)", environment: env))
        let versions = try backend.versions(prefix: prefix + "/").filter { !$0.deleteMarker }
        let kinds = Set(
            versions.map { $0.key.dropFirst(prefix.count + 1).split(separator: "/").first.map(String.init) ?? "" })
        #expect(kinds.contains("tail") && kinds.contains("checkpoint") && kinds.count >= 3, "\(kinds.sorted())")
        var objects: [(String, Data)] = []
        for v in versions {
            let r = try client.expect("reading \(v.key)", "GET", key: v.key, query: [("versionId", v.version)])
            objects.append((v.key, Data(r.body)))
        }
        func found(_ needle: String) -> [String] {
            objects.filter { ByteSearch.contains(needle, in: $0.1) }.map(\.0)
        }
        // A clear field of the same entries is found, through compression: the search sees.
        #expect(!found("sess_117").isEmpty, "a session id stored in the clear should be found in the bucket")
        #expect(!found("user.login").isEmpty)
        for value in ErasureTests.clearValues + ["usr_bob", "Bob Other", "198.51.100.4"] {
            #expect(found(value).isEmpty, "\(value) reached the bucket: \(found(value))")
        }
        // And the erased person's values are nowhere on the machine's disk either.
        for value in ErasureTests.clearValues {
            #expect(
                ErasureTests.holding(value, under: d.data).isEmpty,
                "\(value) is in \(ErasureTests.holding(value, under: d.data))")
        }
    }
}
