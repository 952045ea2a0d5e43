import Foundation
import Testing

/// Issue 23 §1: every admin's browser keeps the newest checkpoint it verified and checks each
/// later one against it. Behind one origin (a forwarding proxy whose upstream the test swaps),
/// the honest log grows and is accepted; a copy of its earlier state (data and key, as a
/// dishonest operator could restore them) is caught as a rollback, and that copy grown to the
/// same size with other entries is caught as a fork; each time the page names it, shows
/// nothing as verified, and offers the two signed notes as evidence.
@Suite(.serialized) struct ConsoleRollbackTests {
    static let rows = "Array.from(document.querySelectorAll('#entries tbody tr'))"
    static let allVerified =
        "return " + rows
        + ".length === 50 && Array.from(document.querySelectorAll('.proof')).every(p => p.textContent === '✓ verified')"
        + " && document.getElementById('fork').hidden"

    /// `n` acme entries whose metadata says `tag` (so two such runs differ in content).
    static func events(_ n: Int, tag: String) -> String {
        (0..<n).map {
            #"{"org":"acme","category":"access","action":"access.granted","actor":{"type":"human","id":"usr_\#(tag)"},"target":{"type":"project","id":"p-\#($0)"},"outcome":"success","source":{"service":"web"},"occurred_at":"2026-11-29T10:00:00.000Z","metadata":{"run":"\#(tag)","i":\#($0)}}"#
        }.joined(separator: "\n") + "\n"
    }

    static func size(_ d: Daemon, token: String) async throws -> Int {
        let (s, body) = try await d.http("/v1/checkpoint", token: token)
        let lines = String(decoding: body, as: UTF8.self).split(separator: "\n")
        guard s == 200, lines.count > 1, let n = Int(lines[1]) else {
            throw DaemonFailed(message: "no checkpoint: HTTP \(s)")
        }
        return n
    }

    /// Waits until `d`'s newest checkpoint holds exactly its stored entries, `n` at least.
    static func settled(_ d: Daemon, atLeast n: Int, token: String) async throws -> Int {
        for _ in 0..<200 {
            if let size = try? await size(d, token: token), size >= n { return size }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw DaemonFailed(message: "no checkpoint of \(n) entries within 20 s: \(d.logTail())")
    }

    /// The whole state of `from` (its data and its key, with the signer's state) into `to`.
    static func copyState(from: String, to: String) throws {
        let fm = FileManager.default
        for name in try fm.contentsOfDirectory(atPath: from) where !name.hasPrefix("auditd.") {
            try fm.copyItem(atPath: from + "/" + name, toPath: to + "/" + name)
        }
    }

    /// The size line of the note the browser keeps for `key`.
    static let keptSize =
        "return (localStorage.getItem('auditlog.kept-checkpoint:' + arguments[0]) || '').split('\\n')[1]"

    @Test func aLogRolledBackOrForkedBetweenVisitsIsCaughtAndOneThatGrewIsNot() async throws {
        let d = Daemon("console-kept")
        defer { d.cleanup() }
        try d.start()
        #expect(try await d.ctlOffPool(["append", "--socket", d.socket], stdin: Self.events(80, tag: "first")).0 == 0)
        let acme = try d.token(org: "acme")
        let key = try #require(try await d.json("/v1/session", token: acme)["verifier_key"] as? String)
        let first = try await Self.settled(d, atLeast: 81, token: acme)
        // The log as it was then, copied while it is stopped.
        #expect(d.stop() == 0)
        let early = Daemon("console-early")
        defer { early.cleanup() }
        try Self.copyState(from: d.root, to: early.root)
        try d.start()

        let upstream = d.root + "-upstream"
        defer { try? FileManager.default.removeItem(atPath: upstream) }
        func behind(_ daemon: Daemon) throws {
            try String(daemon.port).write(toFile: upstream, atomically: true, encoding: .utf8)
        }
        try behind(d)
        let proxy = try LoopbackScript("tamper_proxy.py", ["@" + upstream, "-1", "none"])
        defer { proxy.stop() }
        let url = "http://127.0.0.1:\(proxy.port)/"

        try await WebDriver.with { browser in
            try await browser.signIn(at: url, token: acme, key: key)
            try await browser.wait("the first visit, verified", Self.allVerified)
            #expect(try await browser.run(Self.keptSize, [key]) as? String == String(first))

            // The log grows: the next visit checks a consistency proof and keeps the larger note.
            #expect(
                try await d.ctlOffPool(["append", "--socket", d.socket], stdin: Self.events(30, tag: "second")).0 == 0)
            let grown = try await Self.settled(d, atLeast: first + 30, token: acme)
            try await browser.open(url)
            try await browser.wait("a visit after growth, verified", Self.allVerified)
            #expect(try await browser.run(Self.keptSize, [key]) as? String == String(grown))
            // The browser's RFC 9162 check itself, over the server's proofs from many sizes:
            // each holds, and fails with one bit of the proof or the old root changed.
            let olds = [1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 32, 33, 64, first, grown - 1]
            let checks = try #require(
                try await browser.run(
                    """
                    const m = await import('/console/consistency.js');
                    const tok = sessionStorage.getItem('auditlog.token');
                    const unhex = (h) => new Uint8Array(h.match(/../g).map((b) => parseInt(b, 16)));
                    const out = [];
                    for (const old of arguments[0]) {
                      const r = await (await fetch(`/v1/proofs/consistency?old=${old}&new=${arguments[1]}`, { headers: { Authorization: 'Bearer ' + tok } })).json();
                      const args = [BigInt(old), BigInt(arguments[1]), unhex(r.old_root), unhex(r.new_root)];
                      const p = r.proof.map(unhex);
                      const bent = p.map((x) => x.slice());
                      bent[bent.length - 1][7] ^= 1;
                      out.push([await m.consistent(...args, p), await m.consistent(...args, bent),
                        await m.consistent(args[0], args[1], args[3], args[3], p)].join());
                    }
                    return out;
                    """.asyncBody, [olds, grown]) as? [String])
            #expect(
                checks == Array(repeating: "true,false,false", count: olds.count),
                "\(zip(olds, checks).map { "\($0): \($1)" })")

            // Rolled back: the earlier copy behind the same origin.
            #expect(d.stop() == 0)
            try early.start()
            try behind(early)
            try await browser.open(url)
            try await browser.wait(
                "the rollback caught",
                "return !document.getElementById('fork').hidden && document.getElementById('fork-why').textContent.includes('rolled back') && "
                    + Self.rows
                    + ".length === 50 && Array.from(document.querySelectorAll('.proof')).every(p => p.textContent === '✗ not verified')"
            )
            #expect(try await browser.run(Self.keptSize, [key]) as? String == String(grown))
            let evidence = try #require(
                try await browser.run("return document.getElementById('fork-notes').textContent") as? String)
            #expect(evidence.contains("\n\(grown)\n") && evidence.contains("\n\(first)\n"), "\(evidence)")
            #expect(
                try await browser.run("return document.getElementById('fork-evidence').href.startsWith('blob:')")
                    as? Bool == true)

            // Forked: the earlier copy grown to the same size with other entries.
            let earlySize = try await Self.size(early, token: acme)
            #expect(
                try await early.ctlOffPool(
                    ["append", "--socket", early.socket], stdin: Self.events(grown - earlySize, tag: "forked")
                ).0 == 0)
            #expect(try await Self.settled(early, atLeast: grown, token: acme) == grown)
            try await browser.open(url)
            try await browser.wait(
                "the fork caught",
                "return !document.getElementById('fork').hidden && document.getElementById('fork-why').textContent.includes('different roots') && "
                    + Self.rows
                    + ".length === 50 && Array.from(document.querySelectorAll('.proof')).every(p => p.textContent === '✗ not verified')"
            )
            let notes = try #require(
                try await browser.run("return document.getElementById('fork-notes').textContent") as? String)
            // Two different notes of the same size, both signed by the log's key.
            let sizes = notes.components(separatedBy: "\n").filter { $0 == String(grown) }
            #expect(sizes.count == 2 && notes.components(separatedBy: "\n— auditd.local/log ").count == 3, "\(notes)")

            // The honest log again: it extends the kept note, and nothing is flagged.
            #expect(early.stop() == 0)
            try d.start()
            try behind(d)
            try await browser.open(url)
            try await browser.wait("the honest log, verified again", Self.allVerified)
        }
    }
}
