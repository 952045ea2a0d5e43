import Foundation
import Testing

/// Issue 23 §3, the table an admin works with (headless Chromium): the org chain checked between
/// neighbouring rows, page size, oldest first, the org's total, an actor prefix, copy buttons,
/// the keyboard, a phone's width, dark mode, exports of the applied filter, and archived
/// ranges where the paging reaches them.
@Suite(.serialized) struct ConsoleTableTests {
    static let rows = "Array.from(document.querySelectorAll('#entries tbody tr'))"
    static let allChecked = "\(rows).every(r => r.querySelector('.proof').textContent !== 'checking…')"
    static let allVerified = "\(rows).every(r => r.querySelector('.proof').textContent === '✓ verified')"

    /// Each row's seq, proof mark and the reason behind it.
    static func marks(_ browser: WebDriver) async throws -> [[String]] {
        try #require(
            try await browser.run(
                "return \(rows).map(r => [r.dataset.seq, r.querySelector('.proof').textContent, r.querySelector('.proof').title])"
            ) as? [[String]])
    }

    /// acme's 91 entries (ConsoleBrowserTests.events and its token's record), checkpointed.
    func started(_ name: String, args: [String] = []) async throws -> (Daemon, String, String) {
        let d = Daemon(name, args: args)
        try d.start()
        let (s, _, err) = try await d.ctlOffPool(
            ["append", "--socket", d.socket], stdin: ConsoleBrowserTests.events())
        guard s == 0 else { throw DaemonFailed(message: err) }
        let acme = try d.token(org: "acme")
        let key = try #require(try await d.json("/v1/session", token: acme)["verifier_key"] as? String)
        _ = try await ConsoleRollbackTests.settled(d, atLeast: 136, token: acme)
        return (d, acme, key)
    }

    /// A page that leaves one of the org's entries out, or shows one twice, still holds rows
    /// that each verify: the link between neighbours in the org's chain is what catches it.
    @Test func aRowLeftOutOrShownTwiceBreaksTheOrgChain() async throws {
        let (d, acme, key) = try await started("console-chain")
        defer { d.cleanup() }
        // acme's entries on the newest page run from seq 135 (its token) down; 130 is acme's,
        // between 129 and 132 in its chain.
        let seq = 130
        for (mode, reason, blamed) in [
            ("drop", "the page leaves out 1 of the org's entries", "132"),
            ("twice", "shows its position", "130"),
        ] {
            let proxy = try tamperProxy(upstream: d.port, seq: seq, mode: mode)
            defer { proxy.stop() }
            try await WebDriver.with { browser in
                try await browser.signIn(at: "http://127.0.0.1:\(proxy.port)/", token: acme, key: key)
                try await browser.wait(
                    "the page checked (\(mode))",
                    "return \(Self.rows).length >= 49 && \(Self.allChecked) && !document.getElementById('page-failed').hidden"
                )
                let marks = try await Self.marks(browser)
                let failed = marks.filter { $0[1] == "✗ not verified" }
                #expect(
                    failed.count == 1 && failed[0][0] == blamed && failed[0][2].contains(reason), "\(mode): \(failed)")
                #expect(marks.filter { $0[1] == "✓ verified" }.count == marks.count - 1, "\(mode)")
                let banner = try #require(
                    try await browser.run("return document.getElementById('page-failed').innerText") as? String)
                #expect(banner.contains(reason), "\(banner)")
                // A filtered page selects entries, not a run of the chain: no link is asked for.
                try await browser.run("document.getElementById('f-outcome').value = 'success'")
                try await browser.click("#filters button[type=submit]")
                try await browser.wait(
                    "the filtered page (\(mode))",
                    "return location.search.includes('outcome=success') && \(Self.rows).length > 0 && \(Self.allVerified) && document.getElementById('page-failed').hidden"
                )
            }
        }
        // The genuine page: every link holds, and the org's total is given.
        try await WebDriver.with { browser in
            try await browser.signIn(at: "http://127.0.0.1:\(d.port)/", token: acme, key: key)
            try await browser.wait("the genuine page", "return \(Self.rows).length === 50 && \(Self.allVerified)")
            try await browser.wait(
                "the total", "return document.getElementById('summary').textContent.includes('holds 91 entries')")
            #expect(
                try await browser.run("return document.getElementById('proof-status').textContent") as? String
                    == "Proofs checked in this browser: 50 verified, 0 not yet checkpointed, 0 not verified.")
        }
    }

    /// The last row of a page and the first of the next are linked too: an entry left out just
    /// at the boundary leaves both pages whole in themselves, and the next page says so.
    @Test func aRowLeftOutAtAPageBoundaryIsCaughtOnTheNextPage() async throws {
        let (d, acme, key) = try await started("console-boundary")
        defer { d.cleanup() }
        // acme newest first: its token (135), then its events i with i % 3 != 2, newest first.
        let newest = [135] + (0..<135).filter { $0 % 3 != 2 }.reversed()
        let proxy = try tamperProxy(upstream: d.port, seq: newest[49], mode: "drop")
        defer { proxy.stop() }
        try await WebDriver.with { browser in
            try await browser.signIn(at: "http://127.0.0.1:\(proxy.port)/", token: acme, key: key)
            try await browser.wait(
                "the first page, whole in itself",
                "return \(Self.rows).length === 49 && \(Self.allVerified) && document.getElementById('page-failed').hidden"
            )
            try await browser.click("#next-page")
            try await browser.wait(
                "the next page checked",
                "return \(Self.rows)[0]?.dataset.seq === '\(newest[50])' && \(Self.allChecked)")
            let marks = try await Self.marks(browser)
            let failed = marks.filter { $0[1] == "✗ not verified" }
            #expect(
                failed.count == 1 && failed[0][0] == "\(newest[50])"
                    && failed[0][2].contains(
                        "the paging leaves out 1 of the org's entries between this page and the one before"),
                "\(failed)")
        }
        try await WebDriver.with { browser in
            try await browser.signIn(at: "http://127.0.0.1:\(d.port)/", token: acme, key: key)
            try await browser.wait("the genuine first page", "return \(Self.rows).length === 50 && \(Self.allVerified)")
            try await browser.click("#next-page")
            try await browser.wait(
                "the genuine next page, linked to the first",
                "return \(Self.rows).length === 41 && \(Self.allVerified) && document.getElementById('page-failed').hidden"
            )
        }
    }

    /// Paging goes on with the filter applied: a category typed but not applied is undone when
    /// the admin pages on, so the form, the URL and the rows say the same.
    @Test func pagingGoesOnWithTheAppliedFilter() async throws {
        let (d, acme, key) = try await started("console-applied")
        defer { d.cleanup() }
        try await WebDriver.with { browser in
            try await browser.signIn(at: "http://127.0.0.1:\(d.port)/?org=acme&limit=25", token: acme, key: key)
            try await browser.wait("the first page", "return \(Self.rows).length === 25 && \(Self.allVerified)")
            try await browser.run("document.getElementById('f-outcome').value = 'success'")
            try await browser.click("#filters button[type=submit]")
            try await browser.wait(
                "the successes", "return location.search.includes('outcome=success') && \(Self.allVerified)")
            // Typed, not applied; then Older.
            try await browser.run("document.getElementById('f-category').value = 'billing'")
            try await browser.click("#next-page")
            try await browser.wait(
                "the next page of the successes",
                "return location.search.includes('cursor=') && \(Self.rows).length > 0 && \(Self.allVerified)")
            let shown = try #require(
                try await browser.run(
                    "return [location.search, document.getElementById('f-category').value, \(Self.rows).map(r => r.cells[4].textContent + '/' + r.cells[2].querySelector('.sub').textContent).join(' ')]"
                ) as? [String])
            #expect(!shown[0].contains("category") && shown[1] == "", "\(shown)")
            #expect(!shown[2].contains("failure") && !shown[2].contains("denied"), "\(shown)")
            #expect(shown[2].split(separator: " ").contains { !$0.hasSuffix("/billing") }, "\(shown)")
        }
    }

    /// Page size, oldest first and an actor prefix, each in the URL; copy buttons put the
    /// values themselves on the clipboard.
    @Test func pageSizeOrderActorPrefixAndCopy() async throws {
        let (d, acme, key) = try await started("console-shape")
        defer { d.cleanup() }
        let origin = "http://127.0.0.1:\(d.port)"
        try await WebDriver.with { browser in
            try await browser.signIn(at: origin + "/", token: acme, key: key)
            try await browser.wait("the first page", "return \(Self.rows).length === 50 && \(Self.allVerified)")
            func choose(_ id: String, _ value: String) async throws {
                try await browser.run(
                    "const s = document.getElementById('\(id)'); s.value = '\(value)'; s.dispatchEvent(new Event('change'))"
                )
            }
            try await choose("f-limit", "25")
            try await browser.wait(
                "25 a page",
                "return \(Self.rows).length === 25 && location.search.includes('limit=25') && \(Self.allVerified)")
            // Oldest first: acme's first entry (seq 0) leads; the buttons say which way they go.
            try await choose("f-order", "asc")
            try await browser.wait(
                "oldest first",
                "return location.search.includes('order=asc') && \(Self.rows).length === 25 && \(Self.rows)[0].dataset.seq === '0' && \(Self.allVerified)"
            )
            #expect(
                try await browser.run("return document.getElementById('next-page').textContent") as? String
                    == "Newer →")
            let seqs = try #require(
                try await browser.run("return \(Self.rows).map(r => Number(r.dataset.seq))") as? [Int])
            #expect(seqs == seqs.sorted(), "\(seqs)")
            try await browser.click("#next-page")
            try await browser.wait(
                "the next page, newer",
                "return \(Self.rows).length === 25 && Number(\(Self.rows)[0].dataset.seq) > \(seqs.last ?? 0) && \(Self.allVerified)"
            )
            // A reload keeps the shape.
            try await browser.open(try #require(try await browser.run("return location.href") as? String))
            try await browser.wait(
                "the same shape after a reload",
                "return document.getElementById('f-order').value === 'asc' && document.getElementById('f-limit').value === '25' && \(Self.rows).length === 25"
            )
            try await choose("f-order", "desc")
            try await choose("f-limit", "50")
            // An actor prefix: acme's actors usr_acme_0 … usr_acme_6; usr_acme_1* is one of them.
            try await browser.type("#f-actor", "usr_acme_1*")
            try await browser.click("#filters button[type=submit]")
            let want = (0..<135).filter { $0 % 3 != 2 && $0 % 7 == 1 }.count
            try await browser.wait(
                "the actor prefix",
                "return \(Self.rows).length === \(want) && \(Self.rows).every(r => r.cells[1].textContent.includes(':usr_acme_1')) && \(Self.allVerified)"
            )

            // Copy: the entry's hash, as the proof established it, onto the clipboard.
            try await browser.devtools(
                "Browser.grantPermissions",
                ["origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]])
            try await browser.click("#entries tbody tr")
            try await browser.wait("the detail", "return document.querySelectorAll('#detail-copy button').length >= 4")
            let labels = try #require(
                try await browser.run(
                    "return Array.from(document.querySelectorAll('#detail-copy button')).map(b => b.textContent)")
                    as? [String])
            #expect(
                labels == ["Copy seq", "Copy hash", "Copy actor id", "Copy target id", "Copy entry JSON"], "\(labels)")
            try await browser.click("#detail-copy button:nth-child(2)")
            try await browser.wait(
                "copied", "return document.getElementById('copied').textContent === 'Copied the hash.'")
            let copied = try await browser.run("return await navigator.clipboard.readText()".asyncBody) as? String
            let proven = try #require(
                try await browser.run("return document.getElementById('detail-proof').textContent") as? String)
            #expect(copied?.count == 64 && proven.contains("hash \(copied ?? "-")"), "\(copied ?? "nil")")
            try await browser.click("#detail-copy button:nth-child(5)")
            try await browser.wait(
                "copied", "return document.getElementById('copied').textContent === 'Copied the entry JSON.'")
            let json = try await browser.run("return await navigator.clipboard.readText()".asyncBody) as? String
            #expect(json?.hasPrefix("{\"action\":") == true && json?.contains("usr_acme_1") == true, "\(json ?? "nil")")
        }
    }

    /// Rows are reached and opened from the keyboard, the detail closes with Escape and gives
    /// the focus back; the results are announced; at a phone's width nothing is wider than the
    /// screen; dark mode follows the system's.
    @Test func keyboardScreenReadersPhonesAndDarkMode() async throws {
        let (d, acme, key) = try await started("console-a11y")
        defer { d.cleanup() }
        let shots = ProcessInfo.processInfo.environment["CONSOLE_SCREENSHOTS"]
        try await WebDriver.with { browser in
            try await browser.signIn(at: "http://127.0.0.1:\(d.port)/", token: acme, key: key)
            try await browser.wait("the page", "return \(Self.rows).length === 50 && \(Self.allVerified)")
            try await browser.run("document.querySelector('#entries tbody tr').focus()")
            try await browser.press("\u{E015}")
            let second = try #require(try await browser.run("return \(Self.rows)[1].dataset.seq") as? String)
            #expect(try await browser.run("return document.activeElement.dataset.seq") as? String == second)
            try await browser.press("\u{E007}")
            try await browser.wait(
                "the detail, opened from the keyboard",
                "return !document.getElementById('detail').hidden && document.activeElement.id === 'detail-title' && document.getElementById('detail-title').textContent.startsWith('Entry \(second) ')"
            )
            try await browser.press("\u{E00C}")
            try await browser.wait(
                "Escape: closed, the focus back on the row",
                "return document.getElementById('detail').hidden && document.activeElement.dataset.seq === '\(second)' && !location.search.includes('entry=')"
            )
            // What a screen reader is told: a caption, live results, the chart as a table.
            #expect(
                (try await browser.run("return document.getElementById('entries').caption.textContent") as? String)?
                    .contains("Audit log of org acme, newest first") == true)
            #expect(
                try await browser.run(
                    "return ['summary', 'proof-status'].every(id => document.getElementById(id).getAttribute('aria-live') === 'polite')"
                ) as? Bool == true)
            let chartRows = try #require(
                try await browser.run(
                    "return Array.from(document.querySelectorAll('.chart-data tbody tr')).map(r => Number(r.lastElementChild.textContent))"
                ) as? [Int])
            #expect(chartRows.count == 30 && chartRows.reduce(0, +) == 91, "\(chartRows)")

            // A phone: 390 px wide.
            try await browser.resize(width: 390, height: 844)
            try await browser.wait(
                "the narrow layout",
                "return getComputedStyle(document.querySelector('#entries thead')).display === 'none'")
            // Nothing is wider than the screen, the chart's table opened or not (it scrolls in its box).
            for open in [false, true] {
                try await browser.run("document.querySelector('.chart-data').open = \(open)")
                let widths = try #require(
                    try await browser.run(
                        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]") as? [Int]
                )
                let wide =
                    try await browser.run(
                        "return Array.from(document.querySelectorAll('body *')).filter(e => !e.closest('.scroll') && (e.getBoundingClientRect().right > document.documentElement.clientWidth + 1 || e.scrollWidth > e.clientWidth + 1)).slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"
                    ) as? [String] ?? []
                #expect(
                    widths.count == 2 && widths[0] <= widths[1],
                    "the page is \(widths) px wide at a phone's width (chart table open: \(open)): \(wide)")
            }
            #expect(
                try await browser.run(
                    "return document.querySelector('#entries tbody td:nth-child(5)').dataset.label") as? String
                    == "Outcome")
            if let shots {
                try await browser.run(
                    "document.querySelector('.chart-data').open = false; document.getElementById('entries').scrollIntoView()"
                )
                try await browser.screenshot(to: shots + "/phone.png")
            }
            try await browser.resize(width: 1400, height: 1000)

            // Dark mode, as the system asks for it.
            func luminance(_ css: String, _ property: String) async throws -> Double {
                let rgb = try #require(
                    try await browser.run(
                        "return getComputedStyle(\(css)).\(property).match(/[0-9.]+/g).slice(0, 3).map(Number)"
                    ) as? [Double])
                return (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255
            }
            #expect(try await luminance("document.body", "backgroundColor") > 0.9)
            try await browser.devtools(
                "Emulation.setEmulatedMedia", ["features": [["name": "prefers-color-scheme", "value": "dark"]]])
            try await browser.wait(
                "dark mode", "return matchMedia('(prefers-color-scheme: dark)').matches")
            let ground = try await luminance("document.body", "backgroundColor")
            let text = try await luminance("document.querySelector('#entries tbody td')", "color")
            #expect(ground < 0.1 && text > 0.7, "dark mode: ground \(ground), text \(text)")
            if let shots {
                try await browser.run("window.scrollTo(0, 0)")
                try await browser.screenshot(to: shots + "/dark.png")
            }
        }
    }
}

extension ConsoleTableTests {
    /// The export buttons export the filter applied (not edits in the form), say what the file
    /// will prove, show the result, and fire once however often they are pressed; the file
    /// saved is the one `auditctl verify-export` accepts.
    @Test func exportsAreOfTheAppliedFilterAndFireOnce() async throws {
        let (d, acme, key) = try await started("console-export")
        defer { d.cleanup() }
        let downloads = d.root + "/downloads"
        try FileManager.default.createDirectory(atPath: downloads, withIntermediateDirectories: true)
        func exports() async throws -> Int {
            let page = try await d.json("/v1/orgs/acme/entries?action=audit_log.exported&limit=1000", token: acme)
            return ((page["entries"] as? [[String: Any]]) ?? []).count
        }
        try await WebDriver.with { browser in
            try await browser.devtools("Browser.setDownloadBehavior", ["behavior": "allow", "downloadPath": downloads])
            try await browser.signIn(at: "http://127.0.0.1:\(d.port)/", token: acme, key: key)
            try await browser.wait("the page", "return \(Self.rows).length === 50 && \(Self.allVerified)")
            #expect(
                (try await browser.run("return document.getElementById('export-note').textContent") as? String)?
                    .contains("verifies as complete") == true)
            // Denied entries applied; a category typed after, not applied.
            try await browser.run("document.getElementById('f-outcome').value = 'denied'")
            try await browser.click("#filters button[type=submit]")
            try await browser.wait(
                "the denied entries", "return location.search.includes('outcome=denied') && \(Self.allVerified)")
            try await browser.run("document.getElementById('f-category').value = 'billing'")
            #expect(
                (try await browser.run("return document.getElementById('export-note').textContent") as? String)?
                    .contains("authentic selection") == true)
            // Pressed three times at once.
            try await browser.run("const b = document.getElementById('export-ndjson'); b.click(); b.click(); b.click()")
            try await browser.wait(
                "the export saved", seconds: 30,
                "return document.getElementById('export-progress').textContent.startsWith('Saved acme-audit.ndjson')")
            #expect(try await exports() == 1, "one press, one export")
            let file = downloads + "/acme-audit.ndjson"
            for _ in 0..<100 where !FileManager.default.fileExists(atPath: file) {
                try await Task.sleep(for: .milliseconds(100))
            }
            let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
            let entries = lines.filter { $0.contains("\"type\":\"entry\"") }
            // acme's denied entries: i % 3 != 2 and (i / 3) % 3 == 2.
            let denied = (0..<135).filter { $0 % 3 != 2 && ($0 / 3) % 3 == 2 }.count
            #expect(entries.count == denied && entries.allSatisfy { $0.contains(#"\"outcome\":\"denied\""#) })
            let said = try #require(
                try await browser.run("return document.getElementById('export-progress').textContent") as? String)
            #expect(said.contains("\(denied) entries"), "\(said)")
            let (s, out, _) = try await d.ctlOffPool(["verify-export", file, "--key", key])
            #expect(s == 0 && out.hasPrefix("AUTHENTIC SELECTION: \(denied) entries"), "\(out)")
        }
    }

    /// The evidence pack button (format-spec.md §9.5): off until a time range from one time to
    /// another is applied, then one press saves a pack that `verify-evidence` accepts.
    @Test func theEvidencePackButtonSavesAPackThatVerifies() async throws {
        let (d, acme, key) = try await started("console-evidence")
        defer { d.cleanup() }
        let downloads = d.root + "/downloads"
        try FileManager.default.createDirectory(atPath: downloads, withIntermediateDirectories: true)
        try await WebDriver.with { browser in
            try await browser.devtools("Browser.setDownloadBehavior", ["behavior": "allow", "downloadPath": downloads])
            try await browser.signIn(at: "http://127.0.0.1:\(d.port)/", token: acme, key: key)
            try await browser.wait("the page", "return \(Self.rows).length === 50 && \(Self.allVerified)")
            #expect(
                try await browser.run("return document.getElementById('export-evidence').disabled") as? Bool == true)
            try await browser.run(
                "document.getElementById('f-from').value = '2020-01-01T00:00:00'; document.getElementById('f-to').value = '2100-01-01T00:00:00'"
            )
            try await browser.click("#filters button[type=submit]")
            try await browser.wait(
                "the time range applied",
                "return location.search.includes('to=') && !document.getElementById('export-evidence').disabled")
            try await browser.click("#export-evidence")
            try await browser.wait(
                "the pack saved", seconds: 60,
                "return document.getElementById('export-progress').textContent.startsWith('Saved acme-evidence.tar')")
            let file = downloads + "/acme-evidence.tar"
            for _ in 0..<100 where !FileManager.default.fileExists(atPath: file) {
                try await Task.sleep(for: .milliseconds(100))
            }
            let (s, out, err) = try await d.ctlOffPool(["verify-evidence", file, "--key", key])
            #expect(s == 0 && out.contains("OK: evidence pack of org acme"), "\(out)\(err)")
        }
    }

    /// Archived entries are named where the paging reaches them, collapsed: after the last page
    /// newest first, before the first oldest first, and on no other page.
    @Test func archivedRangesAreShownWhereTheOldEntriesWere() async throws {
        let d = Daemon(
            "console-archived", args: ["--hot-window", "0", "--archive-interval", "1", "--segment-bytes", "20000"])
        defer { d.cleanup() }
        try d.start()
        let input =
            (0..<300).map {
                event(org: "acme", i: $0, extra: #","pad":"\#(String(repeating: "y", count: 200))""#)
            }.joined(separator: "\n") + "\n"
        #expect(try await d.ctlOffPool(["append", "--socket", d.socket], stdin: input).0 == 0)
        let acme = try d.token(org: "acme")
        let key = try #require(try await d.json("/v1/session", token: acme)["verifier_key"] as? String)
        var archived: [[String: Any]] = []
        for _ in 0..<100 where archived.isEmpty {
            archived = (try await d.json("/v1/orgs/acme/entries", token: acme)["archived"] as? [[String: Any]]) ?? []
            if archived.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(!archived.isEmpty, "the daemon should have archived sealed segments")
        // More entries, small, after the archiving: they stay hot, in the open segment.
        #expect(
            try await d.ctlOffPool(
                ["append", "--socket", d.socket], stdin: ConsoleRollbackTests.events(40, tag: "hot")
            )
            .0 == 0)
        _ = try await ConsoleRollbackTests.settled(d, atLeast: 341, token: acme)
        let hot = ((try await d.json("/v1/orgs/acme/entries?limit=1000", token: acme)["entries"] as? [Any]) ?? []).count
        #expect(hot > 25, "the test needs more than one page of hot entries: \(hot)")
        let box = "document.getElementById('archived')"
        try await WebDriver.with { browser in
            try await browser.signIn(at: "http://127.0.0.1:\(d.port)/?org=acme&limit=25", token: acme, key: key)
            try await browser.wait("the newest page", "return \(Self.rows).length === 25 && \(Self.allVerified)")
            #expect(try await browser.run("return \(box).hidden") as? Bool == true)
            // Page on to the oldest hot entries.
            for _ in 0..<20 {
                if try await browser.run("return document.getElementById('next-page').disabled") as? Bool == true {
                    break
                }
                let first = try #require(try await browser.run("return \(Self.rows)[0].dataset.seq") as? String)
                try await browser.click("#next-page")
                try await browser.wait(
                    "the next page", "return \(Self.rows)[0]?.dataset.seq !== '\(first)' && \(Self.allChecked)")
            }
            try await browser.wait("the archived ranges", "return !\(box).hidden && !\(box).open")
            let summary = try #require(
                try await browser.run("return \(box).querySelector('summary').textContent") as? String)
            #expect(summary.contains("older entries of this org are in the archive tier"), "\(summary)")
            try await browser.click("#archived summary")
            let listed = try #require(try await browser.run("return \(box).innerText") as? String)
            #expect(listed.contains("auditctl archive restore DATA"), "\(listed)")
            // Oldest first, the first page is the one next to them.
            try await browser.run(
                "const s = document.getElementById('f-order'); s.value = 'asc'; s.dispatchEvent(new Event('change'))")
            try await browser.wait(
                "oldest first, the ranges before the first page",
                "return location.search.includes('order=asc') && \(Self.rows).length > 0 && !\(box).hidden")
            #expect(try await browser.run("return document.getElementById('page-failed').hidden") as? Bool == true)
        }
    }
}
