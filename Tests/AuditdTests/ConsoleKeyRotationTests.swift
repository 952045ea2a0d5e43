import Foundation
import LogProofs
import TestSupport
import Testing

/// Issue 25 §3 in a real browser: after the log's key was handed on twice, the console, pinned
/// to the first key, follows the statements and verifies every entry; statements that only
/// the new keys signed (a man in the middle stripped the replaced keys' signatures) are
/// refused at sign-in, and nothing is shown as verified.
@Suite(.serialized) struct ConsoleKeyRotationTests {
    @Test func theConsolePinnedToTheFirstKeyFollowsTheHandoversAndRefusesForgedOnes() async throws {
        let d = Daemon("console-keys")
        defer { d.cleanup() }
        try d.start()
        let first = try await d.ctlOffPool(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let origin = String(first.prefix { $0 != "+" })
        let acme = try d.token(org: "acme")
        var appended = 1  // the token's own audit entry
        for n in 0..<3 {
            let lines = (n * 30..<(n + 1) * 30).map { event(org: "acme", i: $0) }.joined(separator: "\n") + "\n"
            #expect(try await d.ctlOffPool(["append", "--socket", d.socket], stdin: lines).0 == 0)
            appended += 30
            guard n < 2 else { break }
            let path = d.root + "/k\(n + 2).key"
            #expect(try await d.ctlOffPool(["key", "generate", "--name", origin, "--out", path]).0 == 0)
            let (rs, rout, rerr) = try await d.ctlOffPool(["key", "rotate", d.data, "--new-key", path, "--grace", "0"])
            #expect(rs == 0, "\(rout)\(rerr)")
            appended += 1
        }
        try await ConsoleBrowserTests().waitForCheckpoint(d, atLeast: appended, token: acme)
        let session = try await d.json("/v1/session", token: acme)
        #expect((session["key_successions"] as? [String])?.count == 2)

        let browser = try await WebDriver()
        do {
            try await browser.open("http://127.0.0.1:\(d.port)/")
            try await browser.type("#token", acme)
            try await browser.type("#pin", first)
            try await browser.click("#signin-form button")
            try await browser.wait(
                "50 rows, every proof verified through both handovers",
                ConsoleBrowserTests.rows
                    + ".length === 50 && Array.from(document.querySelectorAll('.proof')).every(p => p.textContent === '✓ verified')"
            )
        } catch {
            await browser.quit()
            throw error
        }
        await browser.quit()

        let proxy = try tamperProxy(upstream: d.port, seq: 0, mode: "forgekeys")
        defer { proxy.stop() }
        let forged = try await WebDriver()
        do {
            try await forged.open("http://127.0.0.1:\(proxy.port)/")
            try await forged.type("#token", acme)
            try await forged.type("#pin", first)
            try await forged.click("#signin-form button")
            try await forged.wait(
                "the forged statements refused",
                "return !document.getElementById('error').hidden && document.getElementById('error').textContent.includes('not signed by both')"
            )
            let verified = try await forged.run(
                "return Array.from(document.querySelectorAll('.proof')).filter(p => p.textContent.startsWith('✓')).length"
            )
            #expect((verified as? Int) == 0)
        } catch {
            await forged.quit()
            throw error
        }
        await forged.quit()
    }
}
