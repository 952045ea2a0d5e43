import Foundation
import Testing

/// Personal fields in the console (format-spec.md §5.4.4), in headless Chromium: a value is
/// shown once the browser has opened its commitment; an erased one reads "ERASED (entry N,
/// authority …)" once the browser has checked that record in the log; a value changed on the
/// way to the browser is caught though the signed bytes are untouched.
@Suite(.serialized) struct ConsolePersonalTests {
    static let rows = ConsoleTableTests.rows

    @Test func valuesShowOnceOpenedAndErasedOnesSaySoUnderTheirRecord() async throws {
        let d = Daemon("console-personal", args: ["--personal-fields", "commit"])
        defer { d.cleanup() }
        try d.start()
        // Entries 0-9, Ann's even and Bob's odd; Ann erased by entry 10; the token is 11.
        let (s, _, err) = try await d.ctlOffPool(
            ["append", "--socket", d.socket], stdin: (0..<10).map(ErasureTests.event).joined(separator: "\n") + "\n")
        #expect(s == 0, "\(err)")
        let (es, _, eerr) = try await d.ctlOffPool([
            "erase", d.data, "--org", "acme", "--subject", "usr_ann", "--reason", "PRIV-1", "--authority", "DPO Jane",
        ])
        #expect(es == 0, "\(eerr)")
        let acme = try d.token(org: "acme")
        let key = try #require(try await d.json("/v1/session", token: acme)["verifier_key"] as? String)
        _ = try await ConsoleRollbackTests.settled(d, atLeast: 12, token: acme)
        func cells(_ browser: WebDriver, _ seq: Int) async throws -> String {
            try #require(
                try await browser.run(
                    "return \(Self.rows).find(r => r.dataset.seq === '\(seq)').innerText") as? String)
        }
        try await WebDriver.with { browser in
            try await browser.signIn(at: "http://127.0.0.1:\(d.port)/", token: acme, key: key)
            try await browser.wait("the page", "return \(Self.rows).length === 12 && \(ConsoleTableTests.allVerified)")
            let bob = try await cells(browser, 1)
            #expect(bob.contains("human:usr_bob (Bob Other)") && bob.contains("198.51.100.4"), "\(bob)")
            let ann = try await cells(browser, 0)
            #expect(ann.contains("ERASED (entry 10, authority DPO Jane)") && !ann.contains("usr_ann"), "\(ann)")
            // Opened, the entry says what was checked, and shows the values as the proof opened them.
            try await browser.click("#entries tbody tr[data-seq='0']")
            try await browser.wait(
                "the detail", "return !document.getElementById('detail').hidden")
            let steps = try #require(
                try await browser.run("return document.getElementById('detail-proof').innerText") as? String)
            #expect(
                steps.contains("personal fields: 0 open their commitments, 5 erased (each record checked)"), "\(steps)")
            let json = try #require(
                try await browser.run("return document.getElementById('detail-json').textContent") as? String)
            #expect(json.contains("ERASED (entry 10, authority DPO Jane)") && !json.contains("$c"), "\(json)")
        }
        // A value changed beside the entry: its commitment does not open, that row alone fails;
        // so does a value of a field that names only its subject's tag (the commitment another
        // field holds covers it too, format-spec §5.4.1).
        for mode in ["personal", "personaltail"] {
            let proxy = try tamperProxy(upstream: d.port, seq: 1, mode: mode)
            defer { proxy.stop() }
            try await WebDriver.with { browser in
                try await browser.signIn(at: "http://127.0.0.1:\(proxy.port)/", token: acme, key: key)
                try await browser.wait(
                    "the tampered page", "return \(Self.rows).length === 12 && \(ConsoleTableTests.allChecked)")
                let marks = try await ConsoleTableTests.marks(browser)
                let failed = marks.filter { $0[1] == "✗ not verified" }
                #expect(failed.count == 1 && failed.first?[0] == "1", "\(mode): \(marks)")
                #expect(failed.first?[2].contains("does not open its commitment") == true, "\(mode): \(failed)")
            }
        }
    }

    @Test func withheldEntriesReadAsWithheldUnderTheirRecordAndAHiddenOneFails() async throws {
        let d = Daemon("console-withheld")
        defer { d.cleanup() }
        try d.start()
        // The token's own entry is 0; under `clear` 1-5 (Ann's 1, 3, 5); under `commit` 6-8;
        // Ann erased by entry 9, which withholds 1, 3 and 5.
        let acme = try d.token(org: "acme")
        var (s, _, err) = try await d.ctlOffPool(
            ["append", "--socket", d.socket], stdin: (0..<5).map(ErasureTests.event).joined(separator: "\n") + "\n")
        #expect(s == 0, "\(err)")
        #expect(d.stop() == 0)
        d.extraArgs = ["--personal-fields", "commit"]
        try d.start()
        (s, _, err) = try await d.ctlOffPool(
            ["append", "--socket", d.socket], stdin: (5..<8).map(ErasureTests.event).joined(separator: "\n") + "\n")
        #expect(s == 0, "\(err)")
        let (es, _, eerr) = try await d.ctlOffPool([
            "erase", d.data, "--org", "acme", "--subject", "usr_ann", "--reason", "PRIV-4", "--authority", "DPO",
        ])
        #expect(es == 0, "\(eerr)")
        let key = try #require(try await d.json("/v1/session", token: acme)["verifier_key"] as? String)
        _ = try await ConsoleRollbackTests.settled(d, atLeast: 10, token: acme)
        try await WebDriver.with { browser in
            try await browser.signIn(at: "http://127.0.0.1:\(d.port)/", token: acme, key: key)
            try await browser.wait("the page", "return \(Self.rows).length === 10 && \(ConsoleTableTests.allChecked)")
            let marks = try await ConsoleTableTests.marks(browser)
            for m in marks {
                let want = ["1", "3", "5"].contains(m[0]) ? "WITHHELD (entry 9, authority DPO)" : "✓ verified"
                #expect(m[1] == want, "\(marks)")
            }
            let text = try #require(try await browser.run("return document.body.innerText") as? String)
            #expect(!text.contains("203.0.113.9") && !text.contains("Ann Example"), "\(text)")
        }
        // A shown entry passed off as withheld under that record: the record does not list it.
        let proxy = try tamperProxy(upstream: d.port, seq: 2, mode: "hide9")
        defer { proxy.stop() }
        try await WebDriver.with { browser in
            try await browser.signIn(at: "http://127.0.0.1:\(proxy.port)/", token: acme, key: key)
            try await browser.wait(
                "the tampered page", "return \(Self.rows).length === 10 && \(ConsoleTableTests.allChecked)")
            let marks = try await ConsoleTableTests.marks(browser)
            let failed = marks.filter { $0[1] == "✗ not verified" }
            #expect(failed.count == 1 && failed.first?[0] == "2", "\(marks)")
            #expect(failed.first?[2].contains("does not withhold it") == true, "\(failed)")
        }
    }
}
