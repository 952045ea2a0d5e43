import AuditBase
import Foundation
import SegmentStore
import Testing

/// `tokens.json`, `holds.json` and `retention.json` are checked against the audit entries that
/// recorded their changes: an edit by hand that widens access or allows an early purge is
/// refused by `verify`, and a purge refuses to act on it.
@Suite(.serialized) struct OperatorRecordsTests {
    let cli = ArchiveCLITests()

    /// An archived log with a token, a retention change (org_1: 10 years) and a hold (org_2).
    func setUp() throws -> (root: String, data: String, archive: String, hold: String) {
        let (root, data) = try cli.makeLog()
        let archive = root + "/archive"
        for args in [
            ["archive", "run", data, "--archive", archive, "--hot-window", "0"],
            ["token", "create", data, "--org", "org_1"],
            ["retention", "set", data, "--org", "org_1", "--years", "10"],
        ] {
            let (s, out) = try cli.ctl(args)
            guard s == 0 else { throw ArchiveCLITests.CLIFailed(out) }
        }
        let (s, out) = try cli.ctl([
            "hold", "create", data, "--org", "org_2", "--reason", "subpoena 42", "--authority", "Legal",
        ])
        guard s == 0 else { throw ArchiveCLITests.CLIFailed(out) }
        return (root, data, archive, out.split(separator: "\n").last.map(String.init) ?? "")
    }

    func rewrite(_ path: String, _ edit: (Any) -> Any) throws {
        let o = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        try JSONSerialization.data(withJSONObject: edit(o), options: [.sortedKeys]).write(
            to: URL(fileURLWithPath: path))
    }

    @Test func aHoldRemovedOrReleasedByHandIsRefusedAndBlocksThePurge() throws {
        for edit in ["removed", "released"] {
            let (root, data, archive, hold) = try setUp()
            defer { try? FileManager.default.removeItem(atPath: root) }
            var (s, out) = try cli.ctl(["verify", data, "--quiet"])
            #expect(s == 0, "\(out)")
            try rewrite(DataDirectory(data).holds) { o in
                let holds = o as? [[String: Any]] ?? []
                if edit == "removed" { return [] as [Any] }
                return holds.map {
                    var h = $0
                    h["released_at"] = "2026-01-01T00:00:00.000Z"
                    return h
                }
            }
            (s, out) = try cli.ctl(["verify", data, "--quiet"])
            #expect(s == 1 && out.contains("legal hold \(hold)"), "\(edit): \(out)")
            (s, out) = try cli.ctl(["archive", "purge", data, "--archive", archive, "--now", "2040-01-01T00:00:00Z"])
            #expect(s != 0 && out.contains("nothing was purged") && out.contains(hold), "\(edit): \(out)")
            let bundles = try FileManager.default.contentsOfDirectory(atPath: archive).filter {
                $0.hasPrefix("bundle-")
            }
            #expect(bundles.count >= 3, "\(edit): the bundles are all still there")
        }
    }

    /// Issue 18 item 17, for holds: a release written by hand, dated before the archive (so
    /// its missing entry was excused), of a hold whose own entries are archived. Each hold
    /// carries its entries, checked against the tree's leaves, so the release is refused
    /// without the archive, and the purge it would allow does not happen.
    @Test func aHandMadeReleaseOfAnArchivedHoldIsRefused() throws {
        let (root, data) = try cli.makeLog()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let archive = root + "/archive"
        var (s, out) = try cli.ctl([
            "hold", "create", data, "--org", "org_2", "--reason", "subpoena 7", "--authority", "Legal",
        ])
        #expect(s == 0, "\(out)")
        let hold = out.split(separator: "\n").last.map(String.init) ?? ""
        // More entries, so the hold's entry is sealed, then everything sealed is archived.
        var input = ""
        for i in 0..<400 {
            input +=
                #"{"org":"org_\#(i % 3)","category":"access","action":"access.granted","actor":{"type":"human","id":"u"},"target":{"type":"p","id":"q\#(i)"},"outcome":"success","source":{"service":"svc"},"occurred_at":"2025-03-01T00:00:00Z","metadata":{"pad":"\#(String(repeating: "x", count: 300))"}}"#
                + "\n"
        }
        (s, out) = try cli.ctl(["import", data, "--segment-bytes", "40000", "--batch", "100"], stdin: input)
        #expect(s == 0, "\(out)")
        (s, out) = try cli.ctl(["archive", "run", data, "--archive", archive, "--hot-window", "0"])
        #expect(s == 0, "\(out)")
        (s, out) = try cli.ctl(["verify", data, "--quiet"])
        #expect(s == 0 && !out.contains(hold), "\(out)")
        let original = try Data(contentsOf: URL(fileURLWithPath: DataDirectory(data).holds))
        let placed = (try JSONSerialization.jsonObject(with: original) as? [[String: Any]] ?? []).first ?? [:]
        #expect(placed["audit"] != nil, "the hold carries its legal_hold.initiated entry")
        for how in ["dated", "borrowed"] {
            try original.write(to: URL(fileURLWithPath: DataDirectory(data).holds))
            try rewrite(DataDirectory(data).holds) { o in
                (o as? [[String: Any]] ?? []).map {
                    var h = $0
                    h["released_at"] = "2024-01-01T00:00:00.000Z"
                    if how == "borrowed" { h["released_audit"] = h["audit"] }
                    return h
                }
            }
            (s, out) = try cli.ctl(["verify", data, "--quiet"])
            #expect(s == 1 && out.contains("legal hold \(hold)"), "\(how): \(out)")
            (s, out) = try cli.ctl(["archive", "purge", data, "--archive", archive, "--now", "2040-01-01T00:00:00Z"])
            #expect(s != 0 && out.contains("nothing was purged"), "\(how): \(out)")
        }
    }

    @Test func aShortenedRetentionIsRefused() throws {
        for edit in ["org", "default"] {
            let (root, data, archive, hold) = try setUp()
            defer { try? FileManager.default.removeItem(atPath: root) }
            try rewrite(DataDirectory(data).retention) { o in
                var p = o as? [String: Any] ?? [:]
                if edit == "org" { p["orgs"] = ["org_1": 7] } else { p["default_years"] = 1 }
                return p
            }
            var (s, out) = try cli.ctl(["verify", data, "--quiet"])
            #expect(s == 1 && out.contains("retention.json"), "\(edit): \(out)")
            if edit == "org" {
                // With the hold on org_2 released, only org_1's recorded 10 years keep the bundles.
                (s, out) = try cli.ctl(["hold", "release", data, hold, "--authority", "Legal"])
                #expect(s == 0, "\(out)")
                (s, out) = try cli.ctl([
                    "archive", "purge", data, "--archive", archive, "--now", "2035-01-01T00:00:00Z",
                ])
                #expect(s != 0 && out.contains("nothing was purged"), "\(edit): \(out)")
            }
        }
    }

    @Test func aTokenAddedOrReopenedByHandIsRefused() throws {
        let (root, data, _, _) = try setUp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let original = try Data(contentsOf: URL(fileURLWithPath: DataDirectory(data).tokens))
        try rewrite(DataDirectory(data).tokens) { o in
            var all = o as? [[String: Any]] ?? []
            var t = all[0]
            t["id"] = "forged01"
            t["org"] = "org_2"
            all.append(t)
            return all
        }
        var (s, out) = try cli.ctl(["verify", data, "--quiet"])
        #expect(s == 1 && out.contains("token forged01") && out.contains("by hand"), "\(out)")
        // A token's scope widened to operator.
        try original.write(to: URL(fileURLWithPath: DataDirectory(data).tokens))
        try rewrite(DataDirectory(data).tokens) { o in
            (o as? [[String: Any]] ?? []).map {
                var t = $0
                t.removeValue(forKey: "org")
                return t
            }
        }
        (s, out) = try cli.ctl(["verify", data, "--quiet"])
        #expect(s == 1 && out.contains("reads any org"), "\(out)")
    }

    /// Issue 18 item 17: a token written into `tokens.json` by hand, dated before the archived
    /// entries (so no missing entry could be noticed), with the hash of a secret of one's
    /// choosing; and a genuine token's hash replaced by such a one. Each record carries its
    /// audit entry (bound by seq to the tree's leaf), so both are refused without the archive.
    @Test func aHandMadeTokenDatedBeforeTheArchiveIsRefused() throws {
        let (root, data, _, _) = try setUp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let original = try Data(contentsOf: URL(fileURLWithPath: DataDirectory(data).tokens))
        let chosen = SHA256.hash(Array("my-own-secret".utf8)).hex
        try rewrite(DataDirectory(data).tokens) { o in
            var all = o as? [[String: Any]] ?? []
            all.append([
                "id": "0badc0ffee", "org": "org_2", "hash": chosen, "label": "",
                "created_at": "2020-01-01T00:00:00.000Z",
            ])
            return all
        }
        var (s, out) = try cli.ctl(["verify", data, "--quiet"])
        #expect(s == 1 && out.contains("token 0badc0ffee"), "\(out)")
        // A genuine record (with its genuine audit entry) given another secret's hash.
        try original.write(to: URL(fileURLWithPath: DataDirectory(data).tokens))
        try rewrite(DataDirectory(data).tokens) { o in
            (o as? [[String: Any]] ?? []).map {
                var t = $0
                t["hash"] = chosen
                return t
            }
        }
        (s, out) = try cli.ctl(["verify", data, "--quiet"])
        #expect(s == 1 && out.contains("tokens.json") && out.contains("another secret"), "\(out)")
        // The genuine file passes.
        try original.write(to: URL(fileURLWithPath: DataDirectory(data).tokens))
        (s, out) = try cli.ctl(["verify", data, "--quiet"])
        #expect(s == 0, "\(out)")
    }
}
