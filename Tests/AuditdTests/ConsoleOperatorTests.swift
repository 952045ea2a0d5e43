import AuditAccess
import Foundation
import Testing

/// Issue 23 §3, the operator's overview in headless Chromium: what is wrong and why, how fast
/// entries arrive and are acknowledged (from /metrics, over the time between two refreshes),
/// when the verifier and the archiver last ran, the witnesses' lag, the tokens (never their
/// secrets), and the way back from an org the operator opened.
@Suite(.serialized) struct ConsoleOperatorTests {
    @Test func theOverviewSaysWhatIsWrongHowFastAndWhoHoldsTokens() async throws {
        let d = Daemon("console-operator", args: ["--archive-interval", "1", "--verify-interval", "1"])
        // A witness nobody runs: the log is degraded, and the overview says why.
        let absent = try await d.ctlOffPool([
            "witness", "key", "--key", d.root + "/absent.key", "--name", "witness.test/absent",
        ]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        d.extraArgs = ["--witness", "http://127.0.0.1:\(WebDriver.freePort()) \(absent)", "--witness-interval", "1"]
        defer { d.cleanup() }
        try d.start()
        #expect(try await d.ctlOffPool(["append", "--socket", d.socket], stdin: ConsoleBrowserTests.events()).0 == 0)
        let op = try d.token(org: nil)
        let (s, out, err) = try await d.ctlOffPool([
            "token", "create", d.data, "--org", "acme", "--ttl", "30d", "--label", "auditor", "--socket", d.socket,
        ])
        try #require(s == 0, "\(err)")
        let auditor = String(try #require(out.split(separator: "_").dropFirst().first))
        let gone = try d.token(org: "globex")
        let goneId = String(gone.split(separator: "_")[1])
        #expect(try await d.ctlOffPool(["token", "revoke", d.data, goneId, "--socket", d.socket]).0 == 0)
        let cards =
            "return Array.from(document.querySelectorAll('#cards .card')).map(c => c.firstChild.textContent + ': ' + c.lastChild.textContent).join('\\n')"
        try await WebDriver.with { browser in
            try await browser.open("http://127.0.0.1:\(d.port)/")
            try await browser.type("#token", op)
            try await browser.click("#signin-form button")
            do {
                try await browser.wait(
                    "the overview, with the verifier's and the archiver's last runs", seconds: 30,
                    "const t = document.getElementById('cards').textContent; return /last pass [0-9]+ s ago/.test(t) && /last run [0-9]+ s ago/.test(t) && t.includes('witnesses:')"
                )
            } catch {
                // (Twice in a full run the archiver's last run stayed at the start, minutes old;
                // both loops now run on one thread each, named in this list.)
                throw DaemonFailed(message: "\(error)\nthe daemon's threads:\n\(d.threads())\nits log:\n\(d.logTail())")
            }
            var text = try #require(try await browser.run(cards) as? String)
            #expect(text.contains("degraded (witnesses:"), "the reason for degraded: \(text)")
            // The first sample counts since the start; a refresh (every 10 s) counts between two.
            #expect(
                text.contains("Ingest since the daemon started: ") || text.contains("Ingest over the last"), "\(text)")
            #expect(text.contains("nothing was due"), "\(text)")
            #expect(
                text.range(of: #"Latest checkpoint: size [0-9]+, signed [0-9]+ s ago"#, options: .regularExpression)
                    != nil, "\(text)")
            // The tokens: ids, scopes, expiry and state; no secret.
            let rows = try #require(
                try await browser.run(
                    "return Array.from(document.querySelectorAll('#tokens tbody tr')).map(r => Array.from(r.cells).map(c => c.textContent))"
                ) as? [[String]])
            let a = try #require(rows.first { $0[0] == auditor })
            #expect(a[1] == "acme" && a[2] == "auditor" && a[4] != "never" && a[5] == "active", "\(a)")
            #expect(rows.first { $0[0] == goneId }?[5].hasPrefix("revoked") == true, "\(rows)")
            let page = try #require(try await browser.run("return document.body.innerHTML") as? String)
            // The whole secret: base64url, it may hold `_` itself (split at every `_`, a 2-character
            // piece of one was once "found" in the page).
            let secret = String(try #require(TokenStore.parts(of: op)).secret)
            #expect(secret.count == 43, "\(op)")
            if let r = page.range(of: secret) {
                let from = page.index(r.lowerBound, offsetBy: -300, limitedBy: page.startIndex) ?? page.startIndex
                let to = page.index(r.upperBound, offsetBy: 300, limitedBy: page.endIndex) ?? page.endIndex
                let around = page[from..<to]
                Issue.record("the operator token's secret (\(secret.count) characters) is in the page: …\(around)…")
            }
            #expect(!page.contains("token_sha256"))

            // More entries, then Refresh: the rate and latency cover the samples of the last minute.
            #expect(
                try await d.ctlOffPool(
                    ["append", "--socket", d.socket], stdin: ConsoleRollbackTests.events(300, tag: "more")
                ).0 == 0)
            try await browser.click("#op-refresh")
            try await browser.wait(
                "the rate between two refreshes",
                "return /Ingest over the last [0-9]+ s/.test(document.getElementById('cards').textContent)")
            text = try #require(try await browser.run(cards) as? String)
            #expect(text.range(of: #"[1-9][0-9]* entries/s"#, options: .regularExpression) != nil, "\(text)")
            #expect(
                text.range(
                    of: #"Ack latency over the last [0-9]+ s: p50 ≤ [0-9.]+ ms, p99 ≤ [0-9.]+ ms"#,
                    options: .regularExpression) != nil, "\(text)")

            // An org opened from the overview, and the way back.
            try await browser.type("#open-org-name", "acme")
            try await browser.click("#open-org button")
            try await browser.wait(
                "acme's page",
                "return document.querySelectorAll('#entries tbody tr').length === 50 && !document.getElementById('to-operator').hidden"
            )
            try await browser.click("#to-operator")
            try await browser.wait(
                "the overview again",
                "return !document.getElementById('operator').hidden && document.getElementById('org').hidden")
        }
    }
}
