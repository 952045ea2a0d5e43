import AuditBase
import Foundation
import TestSupport
import Testing

/// Trusted time (format-spec.md §8.7) end to end: the real daemon asks a real RFC 3161
/// authority (`openssl ts -reply` on loopback) for tokens over its checkpoints, records them,
/// and exports carry them; `verify-export`, the spec-only verifier and `openssl ts -verify`
/// check them, and an edited one fails. An authority that is down never holds up ingest.
@Suite struct TimeStampDaemonTests {
    func object(_ line: String) -> [String: Any] { ExportProofTests.object(line) }

    func line(_ o: [String: Any]) -> String { ExportProofTests.line(o) }

    /// Runs `body` on a thread of its own: processes are waited for off the cooperative pool.
    func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in
            Thread.detachNewThread { c.resume(with: Result { try body() }) }
        }
    }

    /// Both verifiers on `lines`: their exit statuses and outputs.
    func verify(
        _ d: Daemon, _ key: String, _ lines: [String], _ name: String, _ extra: [String]
    ) async throws -> (
        (Int32, String), (Int32, String)
    ) {
        let path = d.root + "/" + name
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return try await offPool {
            let (s, out, err) = try d.ctl(["verify-export", path, "--key", key] + extra)
            let py = try ExportProofTests.python([ExportProofTests.script, path, "--key", key] + extra)
            return ((s, out + err), py)
        }
    }

    func export(_ d: Daemon, _ token: String) async throws -> [String] {
        let (s, body) = try await d.http("/v1/orgs/acme/export", token: token)
        guard s == 200 else { throw DaemonFailed(message: "export: \(s) \(String(decoding: body, as: UTF8.self))") }
        return String(decoding: body, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    func append(_ d: Daemon, _ range: Range<Int>) async throws {
        let (s, _, err) = try await d.ctlOffPool(
            ["append", "--socket", d.socket],
            stdin: range.map { event(org: "acme", i: $0) }.joined(separator: "\n") + "\n")
        guard s == 0 else { throw DaemonFailed(message: err) }
    }

    @Test func tokensOverCheckpointsBoundAnExportAndEveryVerifierChecksThem() async throws {
        let d = Daemon("tsa")
        defer { d.cleanup() }
        let tsa = try await offPool { try TimeStampAuthority(dir: d.root + "/tsa") }
        defer { tsa.stop() }
        d.extraArgs = ["--timestamp-authority", tsa.url, "--timestamp-trust", tsa.caFile, "--timestamp-interval", "1"]
        try await offPool { try d.start() }
        defer { _ = d.stop() }
        try await append(d, 0..<20)
        // The authority's token over a checkpoint that holds all 20 is recorded in the log.
        let op = try await offPool { try d.token(org: nil) }
        var stamped = 0
        let until = ContinuousClock.now + .seconds(90)
        while stamped < 20, ContinuousClock.now < until {
            let page = try await d.json("/v1/orgs/_operator/entries?action=log.checkpoint.timestamped", token: op)
            let sizes = (page["entries"] as? [[String: Any]] ?? []).compactMap {
                (($0["entry"] as? [String: Any])?["metadata"] as? [String: Any])?["tree_size"] as? Int
            }
            stamped = sizes.max() ?? 0
            if stamped < 20 { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(stamped >= 20, "no token over the 20 entries was recorded: \(d.logTail())")
        try await append(d, 20..<25)
        let key = try await d.ctlOffPool(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let lines = try await export(d, try await offPool { try d.token(org: "acme") })
        let trailer = object(try #require(lines.last))
        let stamps = try #require(trailer["timestamps"] as? [[String: Any]], "the export carries no token")
        #expect(!stamps.isEmpty)

        // Both verifiers check every token against the authority's CA and bound the entries.
        let ((s, out), (ps, pout)) = try await verify(d, key, lines, "e.ndjson", ["--tsa-trust", tsa.caFile])
        #expect(s == 0 && ps == 0, "\(out)\n\(pout)")
        for o in [out, pout] {
            #expect(o.contains("TIME: ") && o.contains("existed no later than") && o.contains("OK: complete"), "\(o)")
        }
        // Without a trust file, nothing is claimed about time.
        let ((s2, out2), (ps2, pout2)) = try await verify(d, key, lines, "e2.ndjson", [])
        #expect(s2 == 0 && ps2 == 0)
        #expect(out2.contains("not checked") && pout2.contains("not checked") && !out2.contains("existed no later"))

        // `openssl ts -verify` checks a carried token over the checkpoint body, with no tool of ours.
        let header = object(try #require(lines.first))
        let origin = try #require((header["checkpoint"] as? String)?.split(separator: "\n").first)
        let t = try #require(stamps.last)
        let body = "\(origin)\n\(t["tree_size"] ?? "")\n\(t["root_hash"] ?? "")\n"
        try body.write(toFile: d.root + "/body.txt", atomically: true, encoding: .utf8)
        try Data(base64Encoded: try #require(t["token"] as? String))?.write(to: URL(fileURLWithPath: d.root + "/t.tst"))
        let (os, oout) = try await runProgramOffPool(
            "/usr/bin/openssl",
            ["ts", "-verify", "-data", "body.txt", "-in", "t.tst", "-token_in", "-CAfile", tsa.caFile],
            in: d.root)
        #expect(os == 0 && oout.contains("Verification: OK"), "\(oout)")

        // Edited: a token's time, its signature, the root it stamps; or trust in another CA.
        var edits: [(String, [String])] = []
        func edited(_ change: (inout [String: Any]) -> Void) -> [String] {
            var tr = trailer
            var list = stamps
            change(&list[list.count - 1])
            tr["timestamps"] = list
            return Array(lines.dropLast()) + [line(tr)]
        }
        edits.append(
            (
                "time",
                edited {
                    $0["time"] = Timestamp.format((Timestamp.parse($0["time"] as? String ?? "") ?? 0) - 3_600_000)
                }
            ))
        edits.append(
            (
                "signature",
                edited {
                    var der = Array(Data(base64Encoded: $0["token"] as? String ?? "") ?? Data())
                    der[der.count - 5] ^= 0x01
                    $0["token"] = Data(der).base64EncodedString()
                }
            ))
        // Another tree's root (the same size's would be the same root): consistency fails.
        edits.append(("root", edited { $0["root_hash"] = Data(repeating: 7, count: 32).base64EncodedString() }))
        for (name, bad) in edits {
            let ((bs, bout), (bps, bpout)) = try await verify(
                d, key, bad, "bad-\(name).ndjson", ["--tsa-trust", tsa.caFile])
            #expect(bs == 1 && bout.hasPrefix("FAILED"), "\(name): \(bout)")
            #expect(bps == 1 && bpout.hasPrefix("FAILED"), "\(name): \(bpout)")
        }
        let other = try await offPool { try TimeStampAuthority(dir: d.root + "/other") }
        other.stop()
        let ((ws, wout), (wps, wpout)) = try await verify(d, key, lines, "other.ndjson", ["--tsa-trust", other.caFile])
        #expect(ws == 1 && wout.hasPrefix("FAILED") && wps == 1 && wpout.hasPrefix("FAILED"), "\(wout)\n\(wpout)")

        // The tokens' entries are ordinary, verified entries of the log.
        let (vs, vout, verr) = try await d.ctlOffPool(["verify", d.data])
        #expect(vs == 0, "\(vout)\(verr)")

        // checkpoints/timestamps is derived from those entries: lost, it is made again at the
        // next start, authorities or none, and exports carry the tokens as before.
        #expect(d.stop() == 0)
        try FileManager.default.removeItem(atPath: d.data + "/checkpoints/timestamps")
        d.extraArgs = []
        try await offPool { try d.start() }
        let again = try await export(d, try await offPool { try d.token(org: "acme") })
        let lastLine = try #require(again.last)
        let carried = try #require(object(lastLine)["timestamps"] as? [[String: Any]])
        #expect(
            carried.count >= stamps.count, "\(carried.count) tokens after the index was lost, \(stamps.count) before")
        let ((rs, rout), (rps, rpout)) = try await verify(d, key, again, "again.ndjson", ["--tsa-trust", tsa.caFile])
        #expect(rs == 0 && rout.contains("existed no later than") && rps == 0, "\(rout)\n\(rpout)")
    }

    @Test func anAuthorityThatIsDownNeverHoldsUpIngest() async throws {
        let d = Daemon("tsa-down")
        defer { d.cleanup() }
        let tsa = try await offPool { try TimeStampAuthority(dir: d.root + "/tsa") }
        // Nothing listens on port 1: refused at once (a stopped authority's port may be taken
        // by another test's server by the time the daemon asks).
        let url = "http://127.0.0.1:1/"
        tsa.stop()
        // Without a trust file the daemon refuses to start: it never records a token it cannot check.
        let (rs, rout) = try await runProgramOffPool(
            Daemon.product("auditd"), ["--data", d.data, "--socket", d.socket, "--timestamp-authority", url])
        #expect(rs != 0 && rout.contains("timestamp_trust"), "\(rout)")

        d.extraArgs = ["--timestamp-authority", url, "--timestamp-trust", tsa.caFile, "--timestamp-interval", "1"]
        try await offPool { try d.start() }
        defer { _ = d.stop() }
        try await append(d, 0..<10)
        var health: [String: Any] = [:]
        let until = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < until {
            health = try await d.json("/healthz", token: nil)
            if health["timestamps"] != nil { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(health["status"] as? String == "degraded", "\(health)")
        #expect((health["timestamps"] as? String)?.contains(url) == true, "\(health)")
        let (_, metrics) = try await d.http("/metrics", token: nil)
        #expect(String(decoding: metrics, as: UTF8.self).contains("auditd_timestamp_failures_total"))
        // Ingest goes on, and an export verifies; asked for a time bound, both verifiers say there is none.
        try await append(d, 10..<15)
        let key = try await d.ctlOffPool(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let lines = try await export(d, try await offPool { try d.token(org: "acme") })
        let ((s, out), (ps, pout)) = try await verify(d, key, lines, "e.ndjson", ["--tsa-trust", tsa.caFile])
        #expect(s == 4 && out.contains("NO TIME BOUND") && out.contains("OK: complete"), "\(out)")
        #expect(ps == 4 && pout.contains("NO TIME BOUND"), "\(pout)")
    }
}

extension TimeStampDaemonTests {
    /// With one authority down and one up, the healthy one stamps what was written, once:
    /// the retries of the one that is down do not make it stamp again and again (each time a
    /// tree grown only by its own last token, one entry a second for as long as the other
    /// is down).
    @Test func aHealthyAuthorityStampsOnlyWhatWasWrittenWhileAnotherIsDown() async throws {
        let d = Daemon("tsa-two")
        defer { d.cleanup() }
        let up = try await offPool { try TimeStampAuthority(dir: d.root + "/up") }
        defer { up.stop() }
        let downURL = "http://127.0.0.1:1/"
        d.extraArgs = [
            "--timestamp-authority", up.url, "--timestamp-authority", downURL, "--timestamp-trust", up.caFile,
            "--timestamp-interval", "1",
        ]
        try await offPool { try d.start() }
        defer { _ = d.stop() }
        try await append(d, 0..<10)
        let op = try await offPool { try d.token(org: nil) }
        func sizes() async throws -> [Int] {
            let page = try await d.json("/v1/orgs/_operator/entries?action=log.checkpoint.timestamped", token: op)
            return (page["entries"] as? [[String: Any]] ?? []).compactMap {
                (($0["entry"] as? [String: Any])?["metadata"] as? [String: Any])?["tree_size"] as? Int
            }
        }
        // Settled: a token over a tree that holds the last entry written that is not a token
        // (the operator token's `audit.token.created`, after the ten). Beyond it the log holds
        // only tokens' own entries, which are never stamped.
        let created = try await d.json("/v1/orgs/_operator/entries?action=audit.token.created", token: op)
        let last = try #require(((created["entries"] as? [[String: Any]]) ?? []).compactMap { $0["seq"] as? Int }.max())
        let until = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < until, try await sizes().max() ?? 0 <= last {
            try await Task.sleep(for: .milliseconds(100))
        }
        let before = try await sizes()
        #expect(before.max() ?? 0 > last, "no token over entry \(last), the last written: \(before)")
        // Five more intervals with nothing written but the retries of the one that is down.
        try await Task.sleep(for: .seconds(5))
        let after = try await sizes()
        #expect(after.count == before.count, "tokens were taken with nothing new to stamp: \(after.sorted())")
        let health = try await d.json("/healthz", token: nil)
        #expect((health["timestamps"] as? String)?.contains(downURL) == true, "\(health)")
    }
}
