import Foundation
import Testing

/// The daemon's archiver and a restore made while it runs, seen through the read port.
@Suite(.serialized) struct ArchiveDaemonTests {
    @Test func archivedDataIsNamedAndRestoredDataIsServedUnderTheSameIsolation() async throws {
        let d = Daemon("archive", args: ["--hot-window", "0", "--archive-interval", "1", "--segment-bytes", "20000"])
        defer { d.cleanup() }
        try d.start()
        var input = ""
        for i in 0..<300 {
            input +=
                event(
                    org: i % 2 == 0 ? "org_a" : "org_b", i: i,
                    extra: #","pad":"\#(String(repeating: "y", count: 200))""#) + "\n"
        }
        let (s, _, err) = try d.ctl(["append", "--socket", d.socket], stdin: input)
        #expect(s == 0, "\(err)")
        let ta = try d.token(org: "org_a")
        let tb = try d.token(org: "org_b")

        // The archiver moves sealed segments out; the list names the bundles instead.
        var page: [String: Any] = [:]
        for _ in 0..<100 {
            page = try await d.json("/v1/orgs/org_a/entries?limit=1000", token: ta)
            if !((page["archived"] as? [[String: Any]]) ?? []).isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let archived = (page["archived"] as? [[String: Any]]) ?? []
        #expect(!archived.isEmpty, "the daemon should have archived sealed segments")
        let hotBefore = (page["entries"] as? [[String: Any]] ?? []).count
        #expect(hotBefore < 150)
        // An archived entry, fetched alone, is named as archived (the same for any org's token).
        let firstSeq = (archived.first?["first_seq"] as? Int) ?? 0
        for tok in [ta, tb] {
            let (code, body) = try await d.http(
                "/v1/orgs/\(tok == ta ? "org_a" : "org_b")/entries/\(firstSeq)", token: tok)
            #expect(
                code == 404 && String(decoding: body, as: UTF8.self).contains("archive tier"),
                "\(String(decoding: body, as: UTF8.self))")
        }
        // Issue 18 item 20: an org with no entry in that segment gets, for its seq, exactly the
        // answer a seq that does not exist gets: nothing says another org's entry is there.
        let tc = try d.token(org: "org_c")
        let (c1, b1) = try await d.http("/v1/orgs/org_c/entries/\(firstSeq)", token: tc)
        let (c2, b2) = try await d.http("/v1/orgs/org_c/entries/9999999", token: tc)
        let same = String(decoding: b1, as: UTF8.self).replacingOccurrences(of: "\(firstSeq)", with: "N")
        #expect(
            c1 == 404 && c2 == 404
                && same == String(decoding: b2, as: UTF8.self).replacingOccurrences(of: "9999999", with: "N"), "\(same)"
        )

        // Restore every bundle while the daemon runs; it picks them up within its verify interval.
        let (rs, rout, _) = try d.ctl(["archive", "restore", d.data, "--all"])
        #expect(rs == 0, "\(rout)")
        var restored = 0
        for _ in 0..<100 {
            page = try await d.json("/v1/orgs/org_a/entries?limit=1000", token: ta)
            restored =
                (page["entries"] as? [[String: Any]] ?? []).filter {
                    ($0["entry"] as? [String: Any])?["action"] as? String == "access.granted"
                }.count
            if restored == 150 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(restored == 150, "all of org_a's entries are served again")
        let orgs = Set(
            (page["entries"] as? [[String: Any]] ?? []).compactMap {
                ($0["entry"] as? [String: Any])?["org"] as? String
            })
        #expect(orgs == ["org_a"])
        // Same isolation: org_b's token still cannot read org_a, restored or not.
        let (st, _) = try await d.http("/v1/orgs/org_a/entries", token: tb)
        #expect(st == 403)
        #expect(d.stop() == 0)
        let (vs, vout, _) = try d.ctl(["verify", d.data, "--quiet"])
        #expect(vs == 0, "\(vout)")
    }
}
