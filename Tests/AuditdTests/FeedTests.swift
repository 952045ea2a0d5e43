import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Issue 11: the live feed delivers every entry of the org exactly once across a reconnect
/// with a cursor, waits for new ones, and keeps to the token's org.
@Suite(.serialized) struct FeedTests {
    func lines(_ data: Data) -> [[String: Any]] {
        String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    @Test func everyEntryExactlyOnceAcrossAReconnect() async throws {
        let d = Daemon("feed")
        defer { d.cleanup() }
        try d.start()
        let first = (0..<30).map { event(org: $0 % 2 == 0 ? "org_a" : "org_b", i: $0) }.joined(separator: "\n") + "\n"
        #expect(try d.ctl(["append", "--socket", d.socket], stdin: first).0 == 0)
        let tok = try d.token(org: "org_a")

        // A forwarder reads 10, then goes away.
        let (s1, b1) = try await d.http("/v1/orgs/org_a/feed?limit=10", token: tok)
        #expect(s1 == 200)
        let part1 = lines(b1)
        #expect(part1.count == 10)
        let cursor = try #require(part1.last?["seq"] as? Int)

        // It comes back with its cursor while new entries keep arriving: it gets the other 5
        // of the first batch and the 25 new ones, in order, each once.
        async let resumed = d.http("/v1/orgs/org_a/feed?cursor=\(cursor)&limit=30", token: tok)
        try await Task.sleep(for: .milliseconds(300))
        let more = (30..<80).map { event(org: $0 % 2 == 0 ? "org_a" : "org_b", i: $0) }.joined(separator: "\n") + "\n"
        #expect(try d.ctl(["append", "--socket", d.socket], stdin: more).0 == 0)
        let (s2, b2) = try await resumed
        #expect(s2 == 200)
        let part2 = lines(b2)
        let all = part1 + part2
        #expect(all.count == 40)
        #expect(all.allSatisfy { ($0["entry"] as? [String: Any])?["org"] as? String == "org_a" })
        #expect(all.compactMap { $0["org_seq"] as? Int } == Array(0..<40), "every org entry once, in order")
        let seqs = all.compactMap { $0["seq"] as? Int }
        #expect(seqs == seqs.sorted() && Set(seqs).count == 40)

        // Same token rules as every org route.
        let other = try d.token(org: "org_b")
        let (s3, _) = try await d.http("/v1/orgs/org_a/feed?limit=1", token: other)
        #expect(s3 == 403 || s3 == 404, "\(s3)")
        let (s4, _) = try await d.http("/v1/orgs/org_a/feed?cursor=x", token: tok)
        #expect(s4 == 400)
        // An open feed (a forwarder that never hangs up) does not hold up a clean stop.
        let open = Task { try? await d.http("/v1/orgs/org_a/feed", token: tok) }
        try await Task.sleep(for: .milliseconds(300))
        let started = Date()
        #expect(d.stop() == 0)
        #expect(
            Date().timeIntervalSince(started) < 20,
            "stopping took \(Date().timeIntervalSince(started)) s with a feed open")
        _ = await open.value
    }
}
