import Foundation
import TestSupport
import Testing

/// Entries written in the clear cannot be erased, only withheld (format-spec.md §5.4.3): a log
/// that ran under `clear`, then `commit`, erases a subject; its clear entries disappear from
/// the read port, the feed and exports (their links and hashes stay, so every proof holds),
/// both verifiers say WITHHELD with the signed record, and a withheld line without such a
/// record fails.
@Suite(.serialized) struct ErasureWithheldTests {
    func lines(_ d: Daemon, _ path: String, token: String) async throws -> [String] {
        let (s, body) = try await d.http(path, token: token)
        #expect(s == 200, "\(String(decoding: body, as: UTF8.self).prefix(300))")
        return String(decoding: body, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    func verifyBoth(
        _ d: Daemon, _ name: String, _ lines: [String], _ key: String
    ) throws -> (Int32, String, Int32, String) {
        let path = d.root + "/\(name)"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let (s, out, err) = try d.ctl(["verify-export", path, "--key", key])
        let (ps, pout) = try ExportProofTests.python([ExportProofTests.script, path, "--key", key])
        return (s, out + err, ps, pout)
    }

    @Test func clearEntriesOfAnErasedSubjectAreWithheldAndEveryProofHolds() async throws {
        let d = Daemon("withheld")
        defer { d.cleanup() }
        try d.start()
        let token = try d.token(org: "acme")
        let key = try d.ctl(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        // Under `clear` (after the token's own entry, seq 0): 9 entries, Ann's at seqs 1, 3, 5, 7, 9.
        var (s, _, err) = try await d.ctlOffPool(
            ["append", "--socket", d.socket], stdin: (0..<9).map(ErasureTests.event).joined(separator: "\n") + "\n")
        #expect(s == 0, "\(err)")
        #expect(d.stop() == 0)
        // Then `commit`: 11 more (seqs 10-20), Ann's at 11 … 19.
        d.extraArgs = ["--personal-fields", "commit"]
        try d.start()
        (s, _, err) = try await d.ctlOffPool(
            ["append", "--socket", d.socket], stdin: (9..<20).map(ErasureTests.event).joined(separator: "\n") + "\n")
        #expect(s == 0, "\(err)")
        let before = try await d.json("/v1/orgs/acme/entries?limit=100&order=asc", token: token)
        let all = try #require(before["entries"] as? [[String: Any]])
        #expect(all.count == 21)
        let firstCommitted = try #require((all[10]["entry"] as? [String: Any])?["received_at"] as? String)

        let (xs, xout, xerr) = try await d.ctlOffPool([
            "erase", d.data, "--org", "acme", "--subject", "usr_ann", "--reason", "PRIV-3", "--authority", "DPO",
        ])
        #expect(xs == 0 && xout.contains("5 entries written in the clear name it"), "\(xout) \(xerr)")

        // The read port: a stub in place of each of Ann's clear entries; none under a filter
        // that would say what they hold; her committed fields erased.
        let page = try await d.json("/v1/orgs/acme/entries?limit=100&order=asc", token: token)
        let shown = try #require(page["entries"] as? [[String: Any]])
        #expect(shown.count == 22)
        for i in [1, 3, 5, 7, 9] {
            #expect(shown[i]["entry"] == nil, "entry \(i) is shown")
            #expect((shown[i]["withheld"] as? [String: Any])?["authority"] as? String == "DPO")
            #expect(shown[i]["hash"] is String)
        }
        #expect((shown[2]["entry"] as? [String: Any])?["actor"] != nil)
        let one = try await d.json("/v1/orgs/acme/entries/1", token: token)
        #expect(one["entry"] == nil && one["withheld"] != nil && one["link"] is String && one["proof"] != nil)
        for q in ["q=Ann", "q=203.0.113.9", "actor=human:usr_ann", "category=authentication"] {
            let found = try await d.json("/v1/orgs/acme/entries?limit=100&\(q)", token: token)
            let list = try #require(found["entries"] as? [[String: Any]])
            #expect(list.allSatisfy { $0["withheld"] == nil }, "\(q) shows a withheld entry")
        }
        let feed = try await lines(d, "/v1/orgs/acme/feed?limit=22", token: token)
        #expect(feed.filter { $0.contains("\"withheld\":{") }.count == 5)
        #expect(!feed.joined().contains("203.0.113.9"))

        // Exports: everything, a time range whose lower edge is one of Ann's clear entries, CSV.
        let everything = try await lines(d, "/v1/orgs/acme/export", token: token)
        #expect(!everything.joined().contains("203.0.113.9") && !everything.joined().contains("Ann Example"))
        var (v, o, p, po) = try verifyBoth(d, "all.ndjson", everything, key)
        #expect(v == 0 && o.contains("OK: complete") && o.contains("WITHHELD: 5 entries"), "\(o)")
        #expect(o.contains("entry 1: WITHHELD (entry 21, authority DPO)") && o.contains("25 fields erased"), "\(o)")
        #expect(p == 0 && po.contains("OK: complete") && po.contains("WITHHELD: 5 entries"), "\(po)")
        let from = firstCommitted.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let ranged = try await lines(d, "/v1/orgs/acme/export?from=\(from)", token: token)
        (v, o, p, po) = try verifyBoth(d, "range.ndjson", ranged, key)
        #expect(v == 0 && o.contains("OK: complete") && o.contains("WITHHELD: 1 entry"), "\(o)")
        #expect(p == 0 && po.contains("OK: complete"), "\(po)")
        // The lower edge: Bob's entry 8 (whose time shows it is before `from`), then Ann's 9.
        #expect(
            ranged.count > 2 && ranged[1].contains("\"seq\":8,") && ranged[2].contains("\"withheld\""),
            "\(ranged.prefix(3))")
        let csv = try await lines(d, "/v1/orgs/acme/export?format=csv", token: token)
        (v, o, p, po) = try verifyBoth(d, "all.csv", csv, key)
        #expect(v == 0 && o.contains("OK: complete") && o.contains("WITHHELD: 5 entries"), "\(o)")
        #expect(p == 0 && po.contains("OK: complete"), "\(po)")

        // Tampered: a shown entry turned into a withheld one (its content removed under the
        // same record), and the record's list taken out of the trailer. Both fail, in both.
        func tampered(_ name: String, _ edit: (inout [String]) -> Void) throws {
            var t = everything
            edit(&t)
            let (a, ao, b, bo) = try verifyBoth(d, name, t, key)
            #expect(a == 1 && ao.hasPrefix("FAILED"), "\(name): \(ao)")
            #expect(b == 1 && bo.hasPrefix("FAILED"), "\(name): \(bo)")
        }
        try tampered("hidden.ndjson") { t in
            guard var o = try? JSONSerialization.jsonObject(with: Data(t[3].utf8)) as? [String: Any] else { return }
            o["content"] = nil
            o["personal"] = nil
            o["withheld"] = ["authority": "DPO", "entry": 21]
            t[3] = String(decoding: (try? JSONSerialization.data(withJSONObject: o)) ?? Data(), as: UTF8.self)
        }
        try tampered("unlisted.ndjson") { t in
            let last = t.count - 1
            guard var o = try? JSONSerialization.jsonObject(with: Data(t[last].utf8)) as? [String: Any],
                var records = o["erasures"] as? [[String: Any]]
            else { return }
            for i in records.indices { records[i]["withheld"] = nil }
            o["erasures"] = records
            t[last] = String(decoding: (try? JSONSerialization.data(withJSONObject: o)) ?? Data(), as: UTF8.self)
        }

        // After a restart the entries are still withheld; the directory verifies.
        #expect(d.stop() == 0)
        try d.start()
        let again = try await d.json("/v1/orgs/acme/entries/9", token: token)
        #expect(again["entry"] == nil && again["withheld"] != nil)
        #expect(d.stop() == 0)
        let (vs, vout, verr) = try d.ctl(["verify", d.data])
        #expect(vs == 0 && vout.contains("5 entries written in the clear WITHHELD"), "\(vout) \(verr)")
        // A list cut short would show withheld entries again: verify says so.
        try Data().write(to: URL(fileURLWithPath: d.data + "/personal/withheld"))
        let (cs, cout, _) = try d.ctl(["verify", d.data])
        #expect(cs == 1 && cout.contains("withholds other entries than personal/withheld lists"), "\(cout)")
    }
}
