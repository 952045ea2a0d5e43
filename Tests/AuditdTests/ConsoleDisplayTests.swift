import Foundation
import Testing

/// Issue 23 §3, the console's table as an admin reads it (headless Chromium): a bidirectional
/// control in an actor id is shown as a visible escape, not obeyed; a 256-character unbroken
/// target wraps inside its cell; a row that fails is named above the table with its reason; the
/// proof marks have a legend; and signing out leaves neither the token typed nor the entries.
@Suite(.serialized) struct ConsoleDisplayTests {
    static let tampered = 3

    static func events() -> String {
        (0..<12).map { i -> String in
            let actor = i == 5 ? #"usr_\u202Enimda"# : "usr_\(i)"
            let target = i == 6 ? String(repeating: "x", count: 256) : "doc-\(i)"
            let outcome = i == tampered ? "denied" : "success"
            return
                #"{"org":"acme","category":"access","action":"access.granted","actor":{"type":"human","id":"\#(actor)"},"target":{"type":"doc","id":"\#(target)"},"outcome":"\#(outcome)","source":{"service":"web"},"occurred_at":"2026-11-29T10:00:00.000Z"}"#
        }.joined(separator: "\n") + "\n"
    }

    @Test func hiddenCharactersLongValuesAndFailuresAreShownPlainly() async throws {
        let d = Daemon("console-display")
        defer { d.cleanup() }
        try d.start()
        let (s, _, err) = try await d.ctlOffPool(["append", "--socket", d.socket], stdin: Self.events())
        #expect(s == 0, "\(err)")
        let acme = try d.token(org: "acme")
        let key = try #require(try await d.json("/v1/session", token: acme)["verifier_key"] as? String)
        _ = try await ConsoleRollbackTests.settled(d, atLeast: 13, token: acme)
        // Through the tamper proxy: entry 3's "denied" becomes "success" wherever it appears.
        let proxy = try tamperProxy(upstream: d.port, seq: Self.tampered)
        defer { proxy.stop() }
        try await WebDriver.with { browser in
            try await browser.signIn(at: "http://127.0.0.1:\(proxy.port)/", token: acme, key: key)
            try await browser.wait(
                "the page checked, one row failed",
                "return Array.from(document.querySelectorAll('.proof')).filter(p => p.textContent === '✓ verified').length === 12 && !document.getElementById('page-failed').hidden"
            )
            // The failure is named on the page, with its reason and its entry.
            let failed = try #require(
                try await browser.run("return document.getElementById('page-failed').innerText") as? String)
            #expect(
                failed.contains("1 of 13 entries on this page did not verify")
                    && failed.contains("entry \(Self.tampered))") && failed.contains("changed"), "\(failed)")
            #expect(
                (try await browser.run("return document.getElementById('legend').innerText") as? String)?.contains(
                    "✗ not verified") == true)
            // The bidirectional control is shown, not obeyed.
            let actors = try #require(
                try await browser.run(
                    "return Array.from(document.querySelectorAll('#entries tbody tr')).map(r => r.cells[1].textContent)"
                )
                    as? [String])
            #expect(actors.contains("human:usr_\\u202Enimda"), "\(actors)")
            #expect(!actors.joined().unicodeScalars.contains { $0.value == 0x202E })
            // The long target wraps: the table fits the window.
            let widths = try #require(
                try await browser.run(
                    "return [document.getElementById('entries').scrollWidth, document.documentElement.clientWidth]")
                    as? [Int])
            #expect(widths.count == 2 && widths[0] <= widths[1], "table \(widths[0]) px in a \(widths[1]) px window")

            // Signing out leaves nothing of the session on the page.
            try await browser.click("#signout")
            #expect(try await browser.run("return document.getElementById('token').value") as? String == "")
            #expect(
                try await browser.run("return document.querySelectorAll('#entries tbody tr').length") as? Int == 0)
            #expect(try await browser.run("return sessionStorage.getItem('auditlog.token')") is NSNull)
        }
    }

    /// A text search whose one match is the oldest of 20,000 entries: the console follows the
    /// cursor by itself and never says "No entries match." while older pages remain.
    @Test func aSearchFollowsTheCursorUntilItFindsTheOldMatch() async throws {
        let d = Daemon("console-search")
        defer { d.cleanup() }
        try d.start()
        let lines = (0..<20_000).map { i -> String in
            let word = i == 0 ? "needle" : "hay\(i)"
            return
                #"{"org":"acme","category":"files","action":"files.file.read","actor":{"type":"human","id":"usr_\#(i % 50)"},"target":{"type":"file","id":"\#(word)"},"outcome":"success","source":{"service":"web"},"occurred_at":"2026-11-29T10:00:00.000Z"}"#
        }
        let (s, _, err) = try await d.ctlOffPool(
            ["append", "--socket", d.socket], stdin: lines.joined(separator: "\n") + "\n")
        #expect(s == 0, "\(err)")
        let acme = try d.token(org: "acme")
        let key = try #require(try await d.json("/v1/session", token: acme)["verifier_key"] as? String)
        _ = try await ConsoleRollbackTests.settled(d, atLeast: 20_001, token: acme)
        try await WebDriver.with { browser in
            try await browser.signIn(at: "http://127.0.0.1:\(d.port)/", token: acme, key: key)
            try await browser.wait(
                "the first page", "return document.querySelectorAll('#entries tbody tr').length === 50")
            // Every text the summary shows from here on is recorded.
            try await browser.run(
                "window.said = []; new MutationObserver(() => window.said.push(document.getElementById('summary').textContent)).observe(document.getElementById('summary'), { childList: true, characterData: true, subtree: true })"
            )
            try await browser.type("#f-q", "needle")
            try await browser.click("#filters button[type=submit]")
            try await browser.wait(
                "the old match, verified", seconds: 60,
                "const rows = Array.from(document.querySelectorAll('#entries tbody tr')); return rows.length === 1 && rows[0].cells[3].textContent === 'file:needle' && rows[0].querySelector('.proof').textContent === '✓ verified'"
            )
            let said = try #require(try await browser.run("return window.said") as? [String])
            print("search for the oldest entry of 20,000: the console said \(said)")
            #expect(!said.contains("No entries match."), "\(said)")
            #expect(try await browser.run("return document.getElementById('search-stop').hidden") as? Bool == true)
            #expect(
                (try await browser.run("return document.getElementById('chart-body').textContent") as? String)?
                    .contains(
                        "not the text search") == true)
        }
    }

    /// The view lives in the URL: a filter, a page and an open entry survive a reload, Back
    /// returns to the view before, and the URL is a link to the same view. The token is never
    /// in it.
    @Test func filtersPagesAndAnOpenEntryLiveInTheURL() async throws {
        let d = Daemon("console-url")
        defer { d.cleanup() }
        try d.start()
        // 135 entries of two orgs, and 100 more successes of acme: two pages of them.
        #expect(try await d.ctlOffPool(["append", "--socket", d.socket], stdin: ConsoleBrowserTests.events()).0 == 0)
        #expect(
            try await d.ctlOffPool(
                ["append", "--socket", d.socket], stdin: ConsoleRollbackTests.events(100, tag: "more")
            ).0 == 0)
        let acme = try d.token(org: "acme")
        let key = try #require(try await d.json("/v1/session", token: acme)["verifier_key"] as? String)
        _ = try await ConsoleRollbackTests.settled(d, atLeast: 236, token: acme)
        let rows = "document.querySelectorAll('#entries tbody tr')"
        let allVerified = "Array.from(document.querySelectorAll('.proof')).every(p => p.textContent === '✓ verified')"
        try await WebDriver.with { browser in
            try await browser.signIn(at: "http://127.0.0.1:\(d.port)/", token: acme, key: key)
            try await browser.wait("the newest page", "return \(rows).length === 50 && \(allVerified)")
            // A filter, then the older page, then one entry opened.
            try await browser.run("document.getElementById('f-outcome').value = 'success'")
            try await browser.click("#filters button[type=submit]")
            try await browser.wait(
                "the filtered page", "return location.search.includes('outcome=success') && \(allVerified)")
            let firstPage = try #require(try await browser.run("return \(rows)[0].dataset.seq") as? String)
            try await browser.click("#next-page")
            try await browser.wait("the older page", "return location.search.includes('cursor=') && \(allVerified)")
            let olderFirst = try #require(try await browser.run("return \(rows)[0].dataset.seq") as? String)
            #expect(olderFirst != firstPage)
            try await browser.click("#entries tbody tr:nth-child(2)")
            try await browser.wait(
                "the entry in the URL",
                "return location.search.includes('entry=') && !document.getElementById('detail').hidden")
            let url = try #require(try await browser.run("return location.href") as? String)
            let opened = try #require(
                try await browser.run("return document.getElementById('detail-title').textContent") as? String)
            #expect(!url.contains(acme) && !url.contains("token"), "\(url)")

            // A reload shows the same view: the filter, the page and the entry.
            try await browser.open(url)
            try await browser.wait(
                "the same view after a reload",
                "return document.getElementById('f-outcome').value === 'success' && \(rows).length > 0 && \(rows)[0].dataset.seq === '\(olderFirst)' && !document.getElementById('detail').hidden && \(allVerified)"
            )
            #expect(
                try await browser.run("return document.getElementById('detail-title').textContent") as? String == opened
            )
            // Back, twice: the filtered newest page, then the unfiltered one.
            try await browser.run("history.back()")
            try await browser.wait(
                "Back: the filtered newest page",
                "return !location.search.includes('cursor=') && location.search.includes('outcome=success') && \(rows)[0].dataset.seq === '\(firstPage)'"
            )
            try await browser.run("history.back()")
            try await browser.wait(
                "Back: unfiltered",
                "return !location.search.includes('outcome=') && document.getElementById('f-outcome').value === '' && \(rows).length === 50"
            )
        }
    }

    /// When it happened beside when it was received, in UTC or this browser's zone (always
    /// named); the date fields are read in that zone; a preset sets the window; a link names
    /// the window as UTC instants.
    @Test func timesAreNamedAndDateFieldsAreReadInTheirZone() async throws {
        let d = Daemon("console-time")
        defer { d.cleanup() }
        try d.start()
        #expect(
            try await d.ctlOffPool(["append", "--socket", d.socket], stdin: ConsoleRollbackTests.events(60, tag: "t")).0
                == 0)
        let acme = try d.token(org: "acme")
        let key = try #require(try await d.json("/v1/session", token: acme)["verifier_key"] as? String)
        _ = try await ConsoleRollbackTests.settled(d, atLeast: 61, token: acme)
        // A browser half an hour off a whole hour from UTC, so that no slip can hide.
        try await WebDriver.with(timeZone: "Asia/Kolkata") { browser in
            try await browser.signIn(at: "http://127.0.0.1:\(d.port)/", token: acme, key: key)
            try await browser.wait("the page", "return document.querySelectorAll('#entries tbody tr').length === 50")
            // UTC: named, and each row says when it happened.
            #expect(
                try await browser.run("return document.getElementById('th-time').textContent") as? String
                    == "Received (UTC)")
            let cell = try #require(
                try await browser.run(
                    "return document.querySelector('#entries tbody tr:nth-child(2)').cells[0].innerText")
                    as? String)
            #expect(cell.contains("happened 2026-11-29 10:00:00.000"), "\(cell)")
            // A preset: the last hour holds every entry, and the link names its start in UTC.
            try await browser.click("[data-preset='3600']")
            try await browser.wait(
                "the last hour",
                "return document.getElementById('f-from').value !== '' && new URLSearchParams(location.search).get('from')?.endsWith('Z') && document.querySelectorAll('#entries tbody tr').length === 50"
            )
            // This browser's zone: named from Intl, the field read as local time.
            try await browser.run(
                "const z = document.getElementById('f-zone'); z.value = 'local'; z.dispatchEvent(new Event('change'))")
            // ICU may name it by its older name.
            let zone = try #require(
                try await browser.run("return Intl.DateTimeFormat().resolvedOptions().timeZone") as? String)
            #expect(zone == "Asia/Kolkata" || zone == "Asia/Calcutta", "\(zone)")
            try await browser.wait(
                "the zone named", "return document.getElementById('th-time').textContent === 'Received (\(zone))'")
            #expect(
                try await browser.run("return document.getElementById('l-from').textContent") as? String
                    == "From (\(zone))")
            try await browser.run("document.getElementById('f-from').value = '2026-11-29T09:30:00'")
            try await browser.click("#filters button[type=submit]")
            try await browser.wait(
                "the field read in the zone",
                "return new URLSearchParams(location.search).get('from') === new Date('2026-11-29T09:30:00').toISOString()"
            )
            try await browser.run(
                "const z = document.getElementById('f-zone'); z.value = 'utc'; z.dispatchEvent(new Event('change'))")
        }
    }
}
