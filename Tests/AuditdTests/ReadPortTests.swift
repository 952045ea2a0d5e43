import AuditBase
import Foundation
import LogProofs
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The read port end to end: isolation between orgs, queries, search, exports verified offline.
@Suite(.serialized) struct ReadPortTests {
    /// A daemon holding entries of org_a (30), org_b (20, with a marker string), and tokens.
    func setUp() throws -> (Daemon, [String: String], [UInt64], [UInt64]) {
        let d = Daemon("read")
        try d.start()
        var input = ""
        for i in 0..<50 {
            let org = i % 5 < 3 ? "org_a" : "org_b"
            let extra = org == "org_b" ? #","note":"SECRET-MARKER-B""# : #","note":"alpha note""#
            input +=
                event(
                    org: org, i: i, category: i % 2 == 0 ? "access" : "files",
                    outcome: i % 7 == 0 ? "denied" : "success", extra: extra) + "\n"
        }
        let (s, out, err) = try d.ctl(["append", "--socket", d.socket], stdin: input)
        guard s == 0 else { throw DaemonFailed(message: err) }
        var seqA: [UInt64] = []
        var seqB: [UInt64] = []
        for (i, line) in out.split(separator: "\n").enumerated() {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let seq = UInt64(o?["seq"] as? Int ?? -1)
            if i % 5 < 3 { seqA.append(seq) } else { seqB.append(seq) }
        }
        var tokens: [String: String] = [:]
        tokens["a"] = try d.token(org: "org_a")
        tokens["b"] = try d.token(org: "org_b")
        tokens["op"] = try d.token(org: nil)
        let revoked = try d.token(org: "org_a")
        let id = String(revoked.split(separator: "_")[1])
        _ = try d.ctl(["token", "revoke", d.data, id, "--socket", d.socket])
        tokens["revoked"] = revoked
        return (d, tokens, seqA, seqB)
    }

    func seqs(_ o: [String: Any]) -> [UInt64] {
        (o["entries"] as? [[String: Any]] ?? []).compactMap { ($0["seq"] as? Int).map(UInt64.init) }
    }

    func orgs(_ o: [String: Any]) -> Set<String> {
        Set((o["entries"] as? [[String: Any]] ?? []).compactMap { ($0["entry"] as? [String: Any])?["org"] as? String })
    }

    @Test func noTokenEndpointOrgCombinationLeaksAnotherOrg() async throws {
        let (d, t, seqA, seqB) = try setUp()
        defer { d.cleanup() }
        let orgPaths = { (org: String, seq: UInt64) -> [String] in
            [
                "/v1/orgs/\(org)/entries", "/v1/orgs/\(org)/entries?q=SECRET-MARKER-B",
                "/v1/orgs/\(org)/entries/\(seq)",
                "/v1/orgs/\(org)/proofs/inclusion?seq=\(seq)", "/v1/orgs/\(org)/export",
            ]
        }
        // A token for org_a against org_b and a nonexistent org: the same 403, so nothing tells them apart.
        for path in orgPaths("org_b", seqB[0]) + orgPaths("org_nonexistent", seqB[0]) {
            let (s, body) = try await d.http(path, token: t["a"])
            #expect(s == 403, "\(path)")
            #expect(String(decoding: body, as: UTF8.self).contains("only its own org"), "\(path)")
            #expect(!String(decoding: body, as: UTF8.self).contains("SECRET-MARKER-B"))
        }
        // Another org's seq under one's own org: the same 404 as a seq that does not exist.
        for seq in [seqB[0], seqB[5], 999_999] as [UInt64] {
            let (s1, b1) = try await d.http("/v1/orgs/org_a/entries/\(seq)", token: t["a"])
            let (s2, b2) = try await d.http("/v1/orgs/org_a/proofs/inclusion?seq=\(seq)", token: t["a"])
            #expect(s1 == 404 && s2 == 404, "seq \(seq)")
            #expect(
                String(decoding: b1, as: UTF8.self) == "{\"error\":{\"message\":\"no entry \(seq) in this org's log\"}}"
            )
            #expect(String(decoding: b2, as: UTF8.self) == String(decoding: b1, as: UTF8.self))
        }
        // Free-text search for org_b's marker within org_a finds nothing; tampered cursors stay in org_a.
        #expect(seqs(try await d.json("/v1/orgs/org_a/entries?q=SECRET-MARKER-B", token: t["a"])).isEmpty)
        for c in [seqB[3] + 1, seqB[0], 0, UInt64.max] {
            let o = try await d.json("/v1/orgs/org_a/entries?limit=1000&cursor=\(c)", token: t["a"])
            #expect(orgs(o).isSubset(of: ["org_a"]))
            #expect(
                Set(seqs(o)).isSubset(
                    of: Set(seqA).union(seqs(try await d.json("/v1/orgs/org_a/entries?limit=1000", token: t["a"])))))
        }
        let (sc, _) = try await d.http("/v1/orgs/org_a/entries?cursor=abc", token: t["a"])
        #expect(sc == 400)
        // The right token sees exactly its org; the operator sees both.
        let a = try await d.json("/v1/orgs/org_a/entries?limit=1000", token: t["a"])
        #expect(orgs(a) == ["org_a"])
        #expect(Set(seqA).isSubset(of: Set(seqs(a))))
        #expect(orgs(try await d.json("/v1/orgs/org_b/entries?limit=1000", token: t["op"])) == ["org_b"])
        #expect(orgs(try await d.json("/v1/orgs/org_a/entries?limit=1000", token: t["op"])) == ["org_a"])
        // No token, a garbage token, a revoked token.
        for tok in [nil, "aud_0000000000_nope", "garbage", t["revoked"]] {
            let (s, _) = try await d.http("/v1/orgs/org_a/entries", token: tok)
            #expect(s == 401)
        }
        // Nothing can be changed or deleted.
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            for path in [
                "/v1/orgs/org_a/entries", "/v1/orgs/org_a/entries/\(seqA[0])", "/v1/checkpoint",
                "/v1/orgs/org_a/export",
            ] {
                let (s, _) = try await d.http(path, token: t["op"], method: method)
                #expect(s == 405, "\(method) \(path)")
            }
        }
        // Metrics and health carry no org data.
        let (_, m) = try await d.http("/metrics", token: nil)
        #expect(!String(decoding: m, as: UTF8.self).contains("org_"))
        #expect(d.stop() == 0)
    }

    @Test func queriesFiltersPaginationAndProofs() async throws {
        let (d, t, seqA, _) = try setUp()
        defer { d.cleanup() }
        // Pagination newest-first collects every org_a entry once.
        var got: [UInt64] = []
        var cursor: String? = nil
        repeat {
            let o = try await d.json(
                "/v1/orgs/org_a/entries?limit=7" + (cursor.map { "&cursor=\($0)" } ?? ""), token: t["a"])
            got += seqs(o)
            cursor = o["next_cursor"] as? String
        } while cursor != nil
        #expect(Set(seqA).isSubset(of: Set(got)))
        #expect(got == got.sorted(by: >))
        #expect(Set(got).count == got.count)
        // Filters.
        let denied = try await d.json("/v1/orgs/org_a/entries?outcome=denied&limit=1000", token: t["a"])
        #expect(!seqs(denied).isEmpty)
        #expect(
            (denied["entries"] as? [[String: Any]] ?? []).allSatisfy {
                ($0["entry"] as? [String: Any])?["outcome"] as? String == "denied"
            })
        let files = try await d.json("/v1/orgs/org_a/entries?category=files&order=asc&limit=1000", token: t["a"])
        #expect(seqs(files) == seqs(files).sorted())
        #expect(
            (files["entries"] as? [[String: Any]] ?? []).allSatisfy {
                ($0["entry"] as? [String: Any])?["category"] as? String == "files"
            })
        let search = try await d.json("/v1/orgs/org_a/entries?q=ALPHA%20NOTE&limit=1000", token: t["a"])
        #expect(seqs(search).count == 30)
        let future = try await d.json("/v1/orgs/org_a/entries?from=2099-01-01T00:00:00Z", token: t["a"])
        #expect(seqs(future).isEmpty)
        let (bad, _) = try await d.http("/v1/orgs/org_a/entries?category=weather", token: t["a"])
        #expect(bad == 400)

        // One entry with its inclusion proof against the signed checkpoint (signed within a second).
        var (cs, cpBody) = try await d.http("/v1/checkpoint", token: t["a"])
        for _ in 0..<30 where cs != 200 {
            try await Task.sleep(for: .milliseconds(100))
            (cs, cpBody) = try await d.http("/v1/checkpoint", token: t["a"])
        }
        #expect(cs == 200)
        let key = try NoteVerifier(try d.ctl(["key", d.data]).1)
        let cp = try SignedCheckpoint(note: String(decoding: cpBody, as: UTF8.self), verifier: key)
        let e = try await d.json("/v1/orgs/org_a/entries/\(seqA[4])", token: t["a"])
        let proof = (e["proof"] as? [String] ?? []).compactMap { Hash(hex: $0) }
        let leaf = try #require(Hash(hex: e["hash"] as? String ?? ""))
        let size = UInt64(e["tree_size"] as? Int ?? 0)
        let cp2 = try SignedCheckpoint(note: e["checkpoint"] as? String ?? "", verifier: key)
        #expect(Merkle.verifyInclusion(index: seqA[4], size: size, leaf: leaf, proof: proof, root: cp2.checkpoint.root))
        // Consistency between two checkpoints.
        let cons = try await d.json("/v1/proofs/consistency?old=10&new=\(cp.checkpoint.size)", token: t["a"])
        let cproof = (cons["proof"] as? [String] ?? []).compactMap { Hash(hex: $0) }
        #expect(
            Merkle.verifyConsistency(
                old: 10, new: cp.checkpoint.size, oldRoot: try #require(Hash(hex: cons["old_root"] as? String ?? "")),
                newRoot: cp.checkpoint.root, proof: cproof))
        #expect(d.stop() == 0)
    }

    /// No answer of the API may be kept by a cache: it holds an org's entries or the newest
    /// checkpoint (CI run 92: a client's cache served a stale checkpoint for two minutes).
    @Test func apiAnswersAreNeverCached() async throws {
        let (d, t, _, _) = try setUp()
        defer { d.cleanup() }
        for (path, token) in [
            ("/v1/checkpoint", t["a"]), ("/v1/orgs/org_a/entries?limit=2", t["a"]), ("/v1/orgs/org_b/entries", t["a"]),
            ("/healthz", nil),
        ] {
            var req = URLRequest(url: try #require(URL(string: "http://127.0.0.1:\(d.port)\(path)")))
            if let token { req.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
            let (_, r) = try await d.session.data(for: req)
            let h = try #require(r as? HTTPURLResponse)
            #expect(h.value(forHTTPHeaderField: "Cache-Control") == "no-store", "\(path): \(h.allHeaderFields)")
        }
        #expect(d.stop() == 0)
    }

    @Test func exportsVerifyOfflineAndTamperingIsCaught() async throws {
        let (d, t, _, _) = try setUp()
        defer { d.cleanup() }
        let (s1, nd) = try await d.http("/v1/orgs/org_a/export", token: t["a"])
        #expect(s1 == 200)
        let path = d.root + "/a.ndjson"
        try nd.write(to: URL(fileURLWithPath: path))
        let key = try d.ctl(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        var (vs, vout, _) = try d.ctl(["verify-export", path, "--key", key])
        #expect(vs == 0 && vout.hasPrefix("OK: complete"), "\(vout)")
        #expect(vout.contains("entries of org org_a"))
        // The export itself was written into org_a's log.
        let audited = try await d.json("/v1/orgs/org_a/entries?action=audit_log.exported", token: t["a"])
        #expect(seqs(audited).count == 1)

        // CSV verifies too; a filtered export verifies as filtered.
        let (s2, csv) = try await d.http("/v1/orgs/org_a/export?format=csv", token: t["op"])
        #expect(s2 == 200)
        try csv.write(to: URL(fileURLWithPath: d.root + "/a.csv"))
        (vs, vout, _) = try d.ctl(["verify-export", d.root + "/a.csv", "--key", key])
        #expect(vs == 0 && vout.hasPrefix("OK: complete"), "\(vout)")
        let (_, filt) = try await d.http("/v1/orgs/org_a/export?outcome=denied", token: t["a"])
        try filt.write(to: URL(fileURLWithPath: d.root + "/f.ndjson"))
        (vs, vout, _) = try d.ctl(["verify-export", d.root + "/f.ndjson", "--key", key])
        #expect(vs == 0 && vout.hasPrefix("AUTHENTIC SELECTION") && vout.contains("NOT PROVEN COMPLETE"), "\(vout)")

        // Tampering: an edited entry, an entry left out, a truncated file, another key.
        var lines = String(decoding: nd, as: UTF8.self).split(separator: "\n").map(String.init)
        let edited = lines.enumerated().map {
            $0.offset == 3 ? $0.element.replacingOccurrences(of: "access.granted", with: "access.revoked") : $0.element
        }
        try edited.joined(separator: "\n").write(toFile: d.root + "/e.ndjson", atomically: true, encoding: .utf8)
        (vs, vout, _) = try d.ctl(["verify-export", d.root + "/e.ndjson", "--key", key])
        #expect(vs == 1 && vout.contains("line 4"), "\(vout)")
        lines.remove(at: 5)
        try lines.joined(separator: "\n").write(toFile: d.root + "/m.ndjson", atomically: true, encoding: .utf8)
        (vs, vout, _) = try d.ctl(["verify-export", d.root + "/m.ndjson", "--key", key])
        #expect(vs == 1 && vout.contains("missing"), "\(vout)")
        try lines.dropLast().joined(separator: "\n").write(
            toFile: d.root + "/t.ndjson", atomically: true, encoding: .utf8)
        (vs, vout, _) = try d.ctl(["verify-export", d.root + "/t.ndjson", "--key", key])
        #expect(vs == 1, "\(vout)")
        let other = try NoteSigner.generate(name: "auditd.local/log").verifier.text
        (vs, vout, _) = try d.ctl(["verify-export", path, "--key", other])
        #expect(vs == 1 && vout.contains("checkpoint"), "\(vout)")
        #expect(d.stop() == 0)
    }
}
