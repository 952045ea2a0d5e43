import AuditBase
import Foundation
import SegmentStore
import TestSupport
import Testing

/// Issue 7 D15, A6, C13: the read port's input rules, damage named as damage, and what an
/// export writes to the log.
@Suite(.serialized) struct ReadPortInputTests {
    func started(_ tag: String, args: [String] = []) throws -> (Daemon, [String: String]) {
        let d = Daemon(tag, args: args)
        try d.start()
        let input = (0..<40).map { event(org: $0 % 2 == 0 ? "org_a" : "org_b", i: $0) }.joined(separator: "\n") + "\n"
        let (s, _, err) = try d.ctl(["append", "--socket", d.socket], stdin: input)
        guard s == 0 else { throw DaemonFailed(message: err) }
        return (d, ["a": try d.token(org: "org_a"), "op": try d.token(org: nil)])
    }

    func errorMessage(_ body: Data) -> String? {
        ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]).flatMap {
            ($0["error"] as? [String: Any])?["message"] as? String
        }
    }

    @Test func badParametersAreRefusedWithTheirNames() async throws {
        let (d, t) = try started("input")
        defer { d.cleanup() }
        let long = String(repeating: "x", count: 1025)
        let cases: [(String, String, String)] = [
            ("a", "/v1/orgs/org_a/entries?q=\(long)", "q:"),
            ("a", "/v1/orgs/org_a/entries?action=\(long)", "action:"),
            ("a", "/v1/orgs/org_a/entries?actor=\(long)", "actor:"),
            ("op", "/v1/orgs/bad%20org!/entries", "org:"),
            ("op", "/v1/orgs/bad%20org!/export", "org:"),
            ("a", "/v1/orgs/org_a/entries?limit=0", "limit:"),
            ("a", "/v1/orgs/org_a/entries?limit=-1", "limit:"),
            ("a", "/v1/orgs/org_a/entries?limit=abc", "limit:"),
            ("a", "/v1/orgs/org_a/entries?limit=1180591620717411303424", "limit:"),
            ("a", "/v1/orgs/org_a/entries?limit=1001", "limit:"),
            ("a", "/v1/orgs/org_a/entries?order=sideways", "order:"),
        ]
        for (who, path, name) in cases {
            let (s, body) = try await d.http(path, token: t[who])
            #expect(s == 400, "\(path.prefix(60))")
            #expect(
                errorMessage(body)?.hasPrefix(name) == true,
                "\(path.prefix(60)): \(String(decoding: body, as: UTF8.self).prefix(200))")
        }
        // The scheme is case-insensitive; HEAD answers where GET does; 405 has the error shape.
        #expect(try await d.http("/v1/orgs/org_a/entries?limit=1", token: t["a"], scheme: "bearer").0 == 200)
        #expect(try await d.http("/healthz", token: nil, method: "HEAD").0 == 200)
        #expect(try await d.http("/v1/orgs/org_a/entries", token: t["a"], method: "HEAD").0 == 200)
        #expect(try await d.http("/v1/orgs/org_b/entries", token: t["a"], method: "HEAD").0 == 403)
        let (s405, b405) = try await d.http("/v1/orgs/org_a/entries", token: t["a"], method: "DELETE")
        #expect(s405 == 405)
        #expect(errorMessage(b405)?.contains("append-only") == true)
        #expect(d.stop() == 0)
    }

    @Test func exportsNeverStoreTheSearchTextNorInventAnOrg() async throws {
        let (d, t) = try started("export-audit")
        defer { d.cleanup() }
        let (s, _) = try await d.http("/v1/orgs/org_a/export?q=salary-of-bob", token: t["a"])
        #expect(s == 200)
        let (sn, _) = try await d.http("/v1/orgs/org_never/export", token: t["op"])
        #expect(sn == 404)
        let log = try await d.json("/v1/orgs/org_a/entries?category=privacy", token: t["a"])
        let entries = log["entries"] as? [[String: Any]] ?? []
        #expect(entries.count == 1)
        let text = String(decoding: try JSONSerialization.data(withJSONObject: entries), as: UTF8.self)
        #expect(!text.contains("salary-of-bob"))
        #expect(text.contains("text_search"))
        let never = try await d.json("/v1/orgs/org_never/entries", token: t["op"])
        #expect((never["entries"] as? [Any])?.isEmpty == true, "the refused operator export wrote nothing")
        #expect(d.stop() == 0)
    }

    /// While a sealed segment is damaged, its entries are named as damaged, never as absent.
    @Test func damageIsNamedAsDamageNotAbsence() async throws {
        let (d, t) = try started("damage", args: ["--segment-bytes", "4096"])
        defer { d.cleanup() }
        #expect(d.stop() == 0)
        let segDir = DataDirectory(d.data).segments
        let sealed = try FileManager.default.contentsOfDirectory(atPath: segDir).filter { $0.hasSuffix(".seg") }
            .sorted()
        let path = segDir + "/" + (try #require(sealed.first))
        let seg = try SealedSegment(path: path)
        let block = try #require(seg.footer.blocks.first)
        try flipByte(path, at: Int(block.offset) + SegmentFormat.blockHeaderSize + 3)
        try d.start()
        let victim = block.firstSeq
        let (s1, b1) = try await d.http("/v1/orgs/org_a/entries/\(victim)", token: t["a"])
        #expect(s1 == 500, "\(String(decoding: b1, as: UTF8.self))")
        #expect(errorMessage(b1)?.contains("damaged") == true)
        let (s2, b2) = try await d.http("/v1/orgs/org_a/entries?order=asc&limit=1000", token: t["a"])
        #expect(s2 == 500)
        #expect(errorMessage(b2)?.contains("damaged") == true)
        d.kill9()
    }
}
