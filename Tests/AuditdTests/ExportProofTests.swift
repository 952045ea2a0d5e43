import AuditBase
import AuditExport
import Foundation
import LogProofs
import TestSupport
import Testing

/// Exports prove what they claim (format-spec.md §9.3), against the tampers an insider with
/// the export file can make: every one is rejected with a message naming what changed, and
/// the genuine exports still pass.
@Suite(.serialized) struct ExportProofTests {
    /// Three batches of org_a and org_b entries a few milliseconds apart: `t1` and `t2` fall
    /// between them.
    func setUp() throws -> (d: Daemon, token: String, key: String, t1: String, t2: String) {
        let d = Daemon("export-proof")
        try d.start()
        var marks: [String] = []
        for batch in 0..<3 {
            var input = ""
            for i in 0..<12 {
                let n = batch * 12 + i
                input +=
                    event(
                        org: n % 4 == 3 ? "org_b" : "org_a", i: n, category: n % 3 == 0 ? "files" : "access",
                        outcome: n % 5 == 0 ? "denied" : "success") + "\n"
            }
            let (s, _, err) = try d.ctl(["append", "--socket", d.socket], stdin: input)
            guard s == 0 else { throw DaemonFailed(message: err) }
            Thread.sleep(forTimeInterval: 0.02)
            marks.append(Timestamp.format(Int64(Date().timeIntervalSince1970 * 1000)))
            Thread.sleep(forTimeInterval: 0.02)
        }
        let key = try d.ctl(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        return (d, try d.token(org: "org_a"), key, marks[0], marks[1])
    }

    func export(_ d: Daemon, _ token: String, _ query: String) async throws -> [String] {
        let (s, body) = try await d.http("/v1/orgs/org_a/export\(query)", token: token)
        guard s == 200 else {
            throw DaemonFailed(message: "export \(query): \(s) \(String(decoding: body, as: UTF8.self))")
        }
        return String(decoding: body, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// Runs verify-export on `lines`: exit status and output. The independent verifier
    /// written from format-spec.md alone (scripts/verify_export.py) must reach the same verdict.
    func verify(
        _ d: Daemon, _ key: String, _ lines: [String], _ name: String, _ extra: [String] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> (Int32, String) {
        let path = d.root + "/" + name
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let (s, out, err) = try d.ctl(["verify-export", path, "--key", key] + extra)
        if extra.allSatisfy({ !$0.contains("/nothing") }) {
            let (ps, pout) = try Self.python([Self.script, path, "--key", key] + extra)
            let verdict = { (t: String) in t.split(separator: ":").first.map(String.init) ?? "" }
            #expect(
                ps == s && verdict(pout) == verdict(out), "spec-only verifier: \(pout)\nauditctl: \(out)",
                sourceLocation: sourceLocation)
        }
        return (s, out + err)
    }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("scripts/verify_export.py").path

    /// Runs python3 (which .ci/run installs): a missing interpreter fails the test, never skips it.
    static func python(_ args: [String]) throws -> (Int32, String) {
        guard
            let py = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: FileManager.default.isExecutableFile)
        else {
            throw DaemonFailed(
                message:
                    "python3 is needed for the spec-only export verifier: apt-get install -y python3 (.ci/run does)")
        }
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: py)
        p.arguments = args
        let o = Pipe()
        p.standardOutput = o
        p.standardError = o
        try p.run()
        let out = o.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    /// An export line's object (empty when it is not one).
    static func object(_ line: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
    }

    /// An object as an export line (keys sorted).
    static func line(_ o: [String: Any]) -> String {
        String(
            decoding: (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes]))
                ?? Data(), as: UTF8.self)
    }

    func object(_ line: String) -> [String: Any] { Self.object(line) }

    func line(_ o: [String: Any]) -> String { Self.line(o) }

    /// `lines` without the entry lines at `drop` (indexes into `lines`), the trailer's counts fixed.
    func dropping(_ lines: [String], _ drop: Set<Int>) -> [String] {
        var kept = lines.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
        var trailer = object(kept[kept.count - 1])
        trailer["count"] = kept.filter { object($0)["type"] as? String == "entry" }.count
        trailer["context"] = kept.filter { object($0)["type"] as? String == "context" }.count
        kept[kept.count - 1] = line(trailer)
        return kept
    }

    /// Indexes of lines of `type`.
    func indexes(_ lines: [String], _ type: String) -> [Int] {
        lines.indices.filter { object(lines[$0])["type"] as? String == type }
    }

    @Test func fullExportsProveNothingIsMissingAtEitherEnd() async throws {
        let (d, token, key, _, _) = try setUp()
        defer { d.cleanup() }
        let full = try await export(d, token, "")
        var (s, out) = try verify(d, key, full, "full.ndjson")
        #expect(s == 0 && out.hasPrefix("OK: complete"), "\(out)")
        // Another key: both verifiers refuse the checkpoint's signature.
        let other = try NoteSigner.generate(name: "auditd.local/log").verifier.text
        (s, out) = try verify(d, other, full, "full.ndjson")
        #expect(s == 1 && out.contains("checkpoint"), "\(out)")
        let entries = indexes(full, "entry")
        #expect(entries.count == 29, "org_a's 27 appended entries, its token's creation, the export's own")

        // The last entry (the export's own audit entry), or the last two, cut and the count fixed.
        (s, out) = try verify(d, key, dropping(full, [entries.last!]), "cut1.ndjson")
        #expect(s == 1 && out.contains("does not end with its own audit entry"), "\(out)")
        (s, out) = try verify(d, key, dropping(full, Set(entries.suffix(2))), "cut2.ndjson")
        #expect(s == 1 && out.contains("does not end with its own audit entry"), "\(out)")
        // The one proof: a gap subtree's hash or height changed.
        let withGap = try #require(entries.first { !((object(full[$0])["gap"] as? [String]) ?? []).isEmpty })
        for edit in ["hash", "height"] {
            var o = object(full[withGap])
            var gap = o["gap"] as? [String] ?? []
            let parts = gap[0].split(separator: ":")
            gap[0] =
                edit == "hash"
                ? "\(parts[0]):" + (parts[1].first == "A" ? "B" : "A") + parts[1].dropFirst()
                : "\((Int(parts[0]) ?? 0) + 1):\(parts[1])"
            o["gap"] = gap
            var forged = full
            forged[withGap] = line(o)
            (s, out) = try verify(d, key, forged, "gap-\(edit).ndjson")
            #expect(s == 1 && out.contains("root"), "\(edit): \(out)")
        }
        // One before the end, the first, one in the middle.
        for i in [entries[entries.count - 2], entries[0], entries[10]] {
            (s, out) = try verify(d, key, dropping(full, [i]), "gap.ndjson")
            #expect(s == 1 && out.contains("missing"), "\(out)")
        }
        #expect(d.stop() == 0)
    }

    /// Issue 18 item 21: `archived_bundles` used to be a list of names, unsigned and without
    /// ranges, so naming any bundle excused any gap: an entry dropped from the hot part of an
    /// export (its leaf folded into the next line's gap, which keeps the proof whole) passed as
    /// an authentic selection. Each bundle now comes with its manifest, signed by the log's
    /// key; a gap passes only where the named bundles hold exactly the missing entries.
    @Test func onlySignedBundlesInTheRangeExcuseAGap() async throws {
        let d = Daemon(
            "export-archived", args: ["--hot-window", "0", "--archive-interval", "1", "--segment-bytes", "20000"])
        defer { d.cleanup() }
        try d.start()
        var input = ""
        for i in 0..<300 {
            input +=
                event(
                    org: i % 2 == 0 ? "org_a" : "org_b", i: i,
                    extra: #","pad":"\#(String(repeating: "y", count: 200))""#) + "\n"
        }
        var (s, _, err) = try await d.ctlOffPool(["append", "--socket", d.socket], stdin: input)
        #expect(s == 0, "\(err)")
        let token = try d.token(org: "org_a")
        var archivedSoFar = 0
        for _ in 0..<100 {
            let page = try await d.json("/v1/orgs/org_a/entries?limit=1", token: token)
            archivedSoFar = ((page["archived"] as? [[String: Any]]) ?? []).count
            if archivedSoFar > 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(archivedSoFar > 0, "the daemon should have archived sealed segments")
        input = (300..<310).map { event(org: "org_a", i: $0) }.joined(separator: "\n") + "\n"
        (s, _, err) = try await d.ctlOffPool(["append", "--socket", d.socket], stdin: input)
        #expect(s == 0, "\(err)")
        let key = try d.ctl(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let full = try await export(d, token, "")
        var out: String
        (s, out) = try verify(d, key, full, "archived.ndjson")
        #expect(s == 0 && out.hasPrefix("AUTHENTIC SELECTION") && out.contains("archived bundles"), "\(out)")

        // A hot entry dropped, its leaf folded into the next line's gap: the proof holds.
        let entries = indexes(full, "entry")
        let victim = entries[entries.count - 4]
        var next = object(full[victim + 1])
        let dropped = object(full[victim])
        next["gap"] =
            ((dropped["gap"] as? [String]) ?? [])
            + [GapBlock.text((0, try #require(Hash(hex: dropped["hash"] as? String ?? ""))))]
            + ((next["gap"] as? [String]) ?? [])
        var forged = full
        forged[victim + 1] = line(next)
        forged = dropping(forged, [victim])
        (s, out) = try verify(d, key, forged, "dropped.ndjson")
        #expect(s == 1 && out.contains("missing"), "\(out)")

        // A bundle's manifest edited to claim one more of the org's entries.
        var header = object(full[0])
        var bundles = header["archived_bundles"] as? [[String: Any]] ?? []
        #expect(!bundles.isEmpty && bundles.allSatisfy { $0["manifest"] is String && $0["manifest_note"] is String })
        let m = bundles[0]["manifest"] as? String ?? ""
        let raised = m.replacingOccurrences(of: "\"entries\" : ", with: "\"entries\" : 1").replacingOccurrences(
            of: "\"entries\":", with: "\"entries\":1")
        #expect(raised != m)
        bundles[0]["manifest"] = raised
        header["archived_bundles"] = bundles
        forged = full
        forged[0] = line(header)
        (s, out) = try verify(d, key, forged, "manifest.ndjson")
        #expect(s == 1 && out.contains("signed"), "\(out)")
        #expect(d.stop() == 0)
    }

    @Test func theHeaderIsBoundToTheSignedExportRecord() async throws {
        let (d, token, key, _, _) = try setUp()
        defer { d.cleanup() }
        let full = try await export(d, token, "")
        // Relabelled as a selection (outcome=success) with the denied entries taken out.
        var header = object(full[0])
        header["filtered"] = true
        header["filter"] = ["outcome": "success"]
        var relabelled = full
        relabelled[0] = line(header)
        let denied = Set(indexes(full, "entry").filter { full[$0].contains(#"\"outcome\":\"denied\""#) })
        #expect(!denied.isEmpty)
        var (s, out) = try verify(d, key, dropping(relabelled, denied), "relabel.ndjson")
        #expect(s == 1 && out.contains("is not the one the export's signed audit entry"), "\(out)")
        // A made-up filter on a genuine selection; a selection relabelled as everything.
        let filtered = try await export(d, token, "?category=access")
        (s, out) = try verify(d, key, filtered, "filtered.ndjson")
        #expect(s == 0 && out.hasPrefix("AUTHENTIC SELECTION"), "\(out)")
        (s, out) = try verify(d, key, filtered, "filtered.ndjson", ["--require-complete"])
        #expect(s == 3 && out.contains("NOT PROVEN COMPLETE"), "\(out)")
        header = object(filtered[0])
        header["filter"] = ["category": "access", "outcome": "success"]
        var madeUp = filtered
        madeUp[0] = line(header)
        let deniedAccess = Set(indexes(filtered, "entry").filter { filtered[$0].contains(#"\"outcome\":\"denied\""#) })
        (s, out) = try verify(d, key, dropping(madeUp, deniedAccess), "madeup.ndjson")
        #expect(s == 1 && out.contains("signed audit entry"), "\(out)")
        header = object(filtered[0])
        header["filter"] = [String: String]()
        header["filtered"] = false
        var asAll = filtered
        asAll[0] = line(header)
        (s, out) = try verify(d, key, asAll, "asall.ndjson")
        #expect(s == 1, "\(out)")
        // A selected entry passed off as context, and context passed off as selected.
        var hidden = filtered
        let e = indexes(filtered, "entry")[2]
        var o = object(filtered[e])
        o["type"] = "context"
        hidden[e] = line(o)
        (s, out) = try verify(d, key, dropping(hidden, []), "hidden.ndjson")
        #expect(s == 1 && out.contains("matches the export's filter but is marked context"), "\(out)")
        #expect(d.stop() == 0)
    }

    @Test func timeRangeExportsProveBothEdges() async throws {
        let (d, token, key, t1, t2) = try setUp()
        defer { d.cleanup() }
        let range = try await export(d, token, "?from=\(t1)&to=\(t2)")
        var (s, out) = try verify(d, key, range, "range.ndjson")
        #expect(s == 0 && out.hasPrefix("OK: complete"), "\(out)")
        let entries = indexes(range, "entry")
        let context = indexes(range, "context")
        #expect(entries.count == 9, "org_a's entries of the middle batch")
        #expect(context.count == 3, "the entry before from, the first at or after to, the export's own")
        // The first or the last entry of the range cut; the lower edge cut.
        (s, out) = try verify(d, key, dropping(range, [entries.first!]), "r1.ndjson")
        #expect(s == 1 && out.contains("missing"), "\(out)")
        (s, out) = try verify(d, key, dropping(range, [entries.last!]), "r2.ndjson")
        #expect(s == 1 && out.contains("missing"), "\(out)")
        (s, out) = try verify(d, key, dropping(range, [context[0]]), "r3.ndjson")
        #expect(s == 1 && out.contains("missing"), "\(out)")
        // An edge entry claimed as part of the range.
        var o = object(range[context[0]])
        o["type"] = "entry"
        var claimed = range
        claimed[context[0]] = line(o)
        (s, out) = try verify(d, key, dropping(claimed, []), "r4.ndjson")
        #expect(s == 1 && out.contains("does not match the export's filter"), "\(out)")
        // A range in the future holds nothing, provably.
        let future = try await export(d, token, "?from=2099-01-01T00:00:00Z")
        (s, out) = try verify(d, key, future, "future.ndjson")
        #expect(s == 0 && out.hasPrefix("OK: complete: all 0 entries"), "\(out)")
        // Open-ended: from t2 to now ends at the export's own entry.
        let tail = try await export(d, token, "?from=\(t2)")
        (s, out) = try verify(d, key, tail, "tail.ndjson")
        #expect(s == 0 && out.hasPrefix("OK: complete"), "\(out)")
        #expect(d.stop() == 0)
    }

    /// An actor filter ending in `*` is a prefix of the id or of `type:id`, the same for the
    /// page, the export and both export verifiers; an entry of another actor claimed under it
    /// is refused.
    @Test func anActorPrefixSelectsTheSameEntriesEverywhere() async throws {
        let (d, token, key, _, _) = try setUp()
        defer { d.cleanup() }
        // org_a holds the entries n with n % 4 != 3 (27 of 36); their actors are usr_(n % 9).
        let org = (0..<36).filter { $0 % 4 != 3 }
        for (filter, want) in [
            ("usr_*", org.count), ("human:usr_1*", org.filter { $0 % 9 == 1 }.count), ("usr_", 0), ("usr_9*", 0),
            ("human:usr_1", org.filter { $0 % 9 == 1 }.count),
        ] {
            let q = "?actor=" + (filter.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            let page = try await d.json("/v1/orgs/org_a/entries\(q)&limit=1000", token: token)
            let ids = ((page["entries"] as? [[String: Any]]) ?? []).compactMap {
                (($0["entry"] as? [String: Any])?["actor"] as? [String: Any])?["id"] as? String
            }
            #expect(ids.count == want, "\(filter): the page holds \(ids.count), not \(want)")
            let lines = try await export(d, token, q)
            #expect(indexes(lines, "entry").count == want, "\(filter): the export")
            let (s, out) = try verify(d, key, lines, "actor.ndjson")
            #expect(s == 0 && out.contains("AUTHENTIC SELECTION: \(want) entries"), "\(filter): \(out)")
        }
        // The token's creation (another actor) claimed as an entry of the usr_* selection.
        let lines = try await export(d, token, "?actor=usr_*")
        let context = indexes(lines, "context")
        var claimed = lines
        var o = object(lines[context[0]])
        o["type"] = "entry"
        claimed[context[0]] = line(o)
        let (s, out) = try verify(d, key, dropping(claimed, []), "claimed.ndjson")
        #expect(s == 1 && out.contains("does not match the export's filter"), "\(out)")
        #expect(d.stop() == 0)
    }

    @Test func csvColumnsAreCheckedAgainstTheSignedContent() async throws {
        let (d, token, key, _, _) = try setUp()
        defer { d.cleanup() }
        let (st, body) = try await d.http("/v1/orgs/org_a/export?format=csv", token: token)
        #expect(st == 200)
        let csv = String(decoding: body, as: UTF8.self)
        var (s, out) = try verify(d, key, [csv.trimmingCharacters(in: .newlines)], "a.csv")
        #expect(s == 0 && out.hasPrefix("OK: complete"), "\(out)")
        let rows = csv.split(separator: "\n").map(String.init)
        let row = rows.firstIndex { $0.hasPrefix("entry,") && $0.contains(",success,") }!
        for (from, to, column) in [
            (",access,", ",admin,", "category"), (",success,", ",failure,", "outcome"),
            (",human:usr_", ",human:usr_x", "actor"),
        ] {
            var edited = rows
            edited[row] = rows[row].replacingOccurrences(
                of: from, with: to, options: [], range: rows[row].range(of: from))
            (s, out) = try verify(d, key, edited, "col.csv")
            #expect(s == 1 && out.contains("column \(column) says"), "\(column): \(out)")
        }
        var edited = rows
        let at = rows[row].split(separator: ",")[3]
        edited[row] = rows[row].replacingOccurrences(of: "," + at + ",", with: ",2020-01-01T00:00:00.000Z,")
        (s, out) = try verify(d, key, edited, "time.csv")
        #expect(s == 1 && out.contains("column received_at says"), "\(out)")
        // The last entry row cut, the trailer's count fixed.
        var cut = rows
        cut.remove(at: rows.count - 2)
        let trailer = object(ExportCSV.rows(rows.last!)[0][11])
        cut[cut.count - 1] = ExportFormat.csvMeta(
            "trailer", line(["type": "trailer", "count": (trailer["count"] as? Int ?? 0) - 1, "context": 0]))
        (s, out) = try verify(d, key, cut, "cut.csv")
        #expect(s == 1 && out.contains("does not end with its own audit entry"), "\(out)")
        #expect(d.stop() == 0)
    }

    @Test func aKeptCheckpointMustBeExtendedByTheExport() async throws {
        let (d, token, key, _, _) = try setUp()
        defer { d.cleanup() }
        func latest() async throws -> String {
            for _ in 0..<50 {
                let (s, body) = try await d.http("/v1/checkpoint", token: token)
                if s == 200 { return String(decoding: body, as: UTF8.self) }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw DaemonFailed(message: "no checkpoint was signed within 5 s")
        }
        let note = try await latest()
        let kept = d.root + "/kept.note"
        try note.write(toFile: kept, atomically: true, encoding: .utf8)
        let size = try SignedCheckpoint(note: note, verifier: NoteVerifier(key)).checkpoint.size
        let plain = try await export(d, token, "")
        var (s, out) = try verify(d, key, plain, "plain.ndjson", ["--checkpoint", kept])
        #expect(s == 1 && out.contains("consistency_from=\(size)"), "\(out)")
        let proven = try await export(d, token, "?consistency_from=\(size)")
        (s, out) = try verify(d, key, proven, "proven.ndjson", ["--checkpoint", kept])
        #expect(s == 0 && out.hasPrefix("OK: complete"), "\(out)")
        // The proof edited: the export no longer extends the kept checkpoint.
        var header = object(proven[0])
        var c = header["consistency"] as? [String: Any] ?? [:]
        c["proof"] = (c["proof"] as? [String] ?? []).map { String($0.reversed()) }
        header["consistency"] = c
        var forged = proven
        forged[0] = line(header)
        (s, out) = try verify(d, key, forged, "forged.ndjson", ["--checkpoint", kept])
        #expect(s == 1 && out.contains("rolled back or forked"), "\(out)")
        // A checkpoint newer than the export cannot be checked against it.
        try await latest().write(toFile: kept, atomically: true, encoding: .utf8)
        (s, out) = try verify(d, key, plain, "plain.ndjson", ["--checkpoint", kept])
        #expect(s == 1 && out.contains("older than the kept checkpoint"), "\(out)")
        (s, out) = try verify(d, key, plain, "plain.ndjson", ["--checkpoint", d.root + "/nothing"])
        #expect(s != 0 && out.contains("cannot read checkpoint file"), "\(out)")
        #expect(d.stop() == 0)
    }
}
