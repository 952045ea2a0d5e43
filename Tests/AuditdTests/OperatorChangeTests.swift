import AuditBase
import Foundation
import TestSupport
import Testing

/// Issue 7 C11: an operator's change (token, hold, retention) takes effect only once its audit
/// entry is in the log; when that cannot be written, nothing changes. auditctl finds the
/// running daemon's socket from the data directory, from any working directory.
@Suite(.serialized) struct OperatorChangeTests {
    func count(_ d: Daemon, _ action: String) async throws -> Int {
        let op = try d.token(org: nil)
        var n = 0
        for org in ["org_a", "_operator"] {
            let o = try await d.json("/v1/orgs/\(org)/entries?limit=1000&action=\(action)", token: op)
            n += (o["entries"] as? [Any])?.count ?? 0
        }
        return n
    }

    @Test func changesThatCannotBeAuditedDoNotHappen() async throws {
        let d = Daemon("opchange")
        defer { d.cleanup() }
        try d.start()
        _ = try d.ctl(["append", "--socket", d.socket], stdin: event(org: "org_a", i: 1) + "\n")
        let token = try d.token(org: "org_a")
        let id = String(token.split(separator: "_")[1])
        let elsewhere = NSTemporaryDirectory()

        // No daemon reachable at the given socket: refused, and the token still works.
        let (s1, _, e1) = try d.ctl(["token", "revoke", d.data, id, "--socket", "/nonexistent.sock"])
        #expect(s1 != 0 && e1.contains("nothing was changed"), "\(e1)")
        #expect(try await d.http("/v1/orgs/org_a/entries", token: token).0 == 200)
        let (s2, _, e2) = try d.ctl([
            "hold", "create", d.data, "--org", "org_a", "--reason", "r", "--authority", "a", "--socket",
            "/nonexistent.sock",
        ])
        #expect(s2 != 0 && e2.contains("nothing was changed"))
        let (_, holds, _) = try d.ctl(["hold", "list", d.data])
        #expect(holds.isEmpty)
        let (s3, _, _) = try d.ctl([
            "retention", "set", d.data, "--org", "org_a", "--years", "9", "--socket", "/nonexistent.sock",
        ])
        #expect(s3 != 0)
        let (_, ret, _) = try d.ctl(["retention", "show", d.data])
        #expect(!ret.contains("org_a"))
        // An invalid org: no token is left behind.
        let (s4, _, _) = try d.ctl(["token", "create", d.data, "--org", "bad org!"])
        #expect(s4 != 0)
        let (_, list, _) = try d.ctl(["token", "list", d.data])
        #expect(!list.contains("bad org"))

        // From another directory, with no --socket: the daemon is found, the change is audited.
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: Daemon.product("auditctl"))
        p.currentDirectoryURL = URL(fileURLWithPath: elsewhere)
        p.arguments = ["token", "revoke", d.data, id]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(try await d.http("/v1/orgs/org_a/entries", token: token).0 == 401)
        #expect(try await count(d, "audit.token.revoked") == 1)
        #expect(d.stop() == 0)
        #expect(
            !FileManager.default.fileExists(atPath: d.data + "/auditd.socket"), "a clean stop removes the socket record"
        )
    }

    /// Issue 18 item 17, at the read port: a record added to `tokens.json` by hand (the hash of
    /// a secret of one's choosing, an old `created_at`) does not open a session, while the
    /// token created through auditctl beside it still does.
    @Test func aHandMadeTokenDoesNotOpenASession() async throws {
        let d = Daemon("handtoken")
        defer { d.cleanup() }
        try d.start()
        let genuine = try d.token(org: "org_a")
        #expect(try await d.http("/v1/session", token: genuine).0 == 200)
        let path = DataDirectory(d.data).tokens
        var all =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [[String: Any]]
            ?? []
        let secret = "my-own-secret"
        all.append([
            "id": "0badc0ffee", "org": "org_a", "hash": SHA256.hash(Array(secret.utf8)).hex, "label": "",
            "created_at": "2020-01-01T00:00:00.000Z",
        ])
        usleep(20_000)  // a new mtime: the daemon rereads the file
        try JSONSerialization.data(withJSONObject: all, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        let forged = "aud_0badc0ffee_" + secret
        #expect(try await d.http("/v1/session", token: forged).0 == 401)
        #expect(try await d.http("/v1/orgs/org_a/entries", token: forged).0 == 401)
        #expect(try await d.http("/v1/session", token: genuine).0 == 200)
        #expect(d.logTail().contains("0badc0ffee"), "the refusal is logged with the record's id: \(d.logTail())")
        // The operator's list says which records the read port stands on.
        let op = try d.token(org: nil)
        let listed = try #require(try await d.json("/v1/operator/tokens", token: op)["tokens"] as? [[String: Any]])
        let state = Dictionary(
            uniqueKeysWithValues: listed.compactMap { t in
                (t["id"] as? String).map { ($0, t["state"] as? String ?? "") }
            })
        #expect(state["0badc0ffee"] == "refused", "\(listed)")
        #expect(state[String(genuine.split(separator: "_")[1])] == "active", "\(listed)")
    }

    /// `token create --ttl`: the token works until its expiry, is then refused with a message
    /// that says so, and an expiry moved by hand in tokens.json is refused like any hand edit
    /// (the expiry is in the token's audit entry).
    @Test func aTokenWithALifetimeStopsAtItsEnd() async throws {
        let d = Daemon("tokenttl")
        defer { d.cleanup() }
        try d.start()
        for bad in ["0", "5x", "-3d", "3651d", "99999999999999999d"] {
            let (s, _, err) = try await d.ctlOffPool(["token", "create", d.data, "--org", "org_a", "--ttl=\(bad)"])
            #expect(s != 0 && err.contains("is not a lifetime"), "\(bad): \(err)")
        }
        let long = try await d.ctlOffPool([
            "token", "create", d.data, "--org", "org_a", "--ttl", "30d", "--socket", d.socket,
        ]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        // Eight seconds: long enough to be used at once on a loaded machine, short to wait out.
        let (s, out, err) = try await d.ctlOffPool([
            "token", "create", d.data, "--org", "org_a", "--ttl", "8s", "--socket", d.socket,
        ])
        #expect(s == 0 && err.contains("valid until"), "\(err)")
        let short = out.trimmingCharacters(in: .whitespacesAndNewlines)
        let session = try await d.json("/v1/session", token: short)
        let expires = try #require(session["expires_at"] as? String)
        #expect(try await d.http("/v1/orgs/org_a/entries", token: short).0 == 200)
        let (_, list, _) = try await d.ctlOffPool(["token", "list", d.data])
        #expect(list.contains("expires \(expires)"), "\(list)")

        // Moved by hand to 2099: refused, the genuine 30-day token beside it still works.
        let path = DataDirectory(d.data).tokens
        let id = String(long.split(separator: "_")[1])
        var all =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [[String: Any]]
            ?? []
        let longBefore = try await d.http("/v1/orgs/org_a/entries", token: long).0
        #expect(longBefore == 200)
        for i in all.indices where all[i]["id"] as? String == id { all[i]["expires_at"] = "2099-01-01T00:00:00.000Z" }
        usleep(20_000)
        try JSONSerialization.data(withJSONObject: all, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        #expect(try await d.http("/v1/session", token: long).0 == 401)
        #expect(d.logTail().contains("the expiry was changed by hand"), "\(d.logTail())")

        // Past its end the short token is refused, and the answer says why.
        guard let end = Timestamp.parse(expires) else { throw DaemonFailed(message: "expires_at \(expires)") }
        let wait = Double(end) / 1000 - Date().timeIntervalSince1970 + 0.2
        if wait > 0 { try await Task.sleep(for: .seconds(wait)) }
        let (code, body) = try await d.http("/v1/orgs/org_a/entries", token: short)
        #expect(
            code == 401 && String(decoding: body, as: UTF8.self).contains("expired at \(expires)"),
            "\(code) \(String(decoding: body, as: UTF8.self))")
    }
}
