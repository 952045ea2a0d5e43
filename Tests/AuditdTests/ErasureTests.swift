import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Erasure end to end (format-spec.md §5.4): the real daemon with `personal_fields = commit`,
/// its read port, exports checked by both verifiers, `auditctl erase` through its socket, and
/// real crashes (kill -9) in the middle of an erasure.
@Suite(.serialized) struct ErasureTests {
    static func event(_ i: Int) -> String {
        let ann = i % 2 == 0
        let who = ann ? "usr_ann" : "usr_bob"
        let meta = ann ? #""email":"ann@example.com","plan":"pro""# : #""plan":"free""#
        return
            #"{"org":"acme","category":"authentication","action":"user.login","actor":{"type":"human","id":"\#(who)","name":"\#(ann ? "Ann Example" : "Bob Other")"},"target":{"type":"session","id":"sess_\#(i)"},"outcome":"success","source":{"service":"auth","ip":"\#(ann ? "203.0.113.9" : "198.51.100.4")","user_agent":"Mozilla/5.0"},"occurred_at":"2026-12-01T00:00:00.000Z","metadata":{\#(meta)},"personal":\#(ann ? #"["email"]"# : "[]")}"#
    }

    static let clearValues = ["usr_ann", "Ann Example", "203.0.113.9", "ann@example.com"]

    /// Files under `dir` that hold `needle`, in their bytes or in any zstd frame inside them.
    static func holding(_ needle: String, under dir: String) -> [String] { ByteSearch.holding(needle, under: dir) }

    func write(_ path: String, _ lines: [String]) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Both verifiers on an export file: exit status and output of each.
    func verifyBoth(_ d: Daemon, _ path: String, _ key: String) throws -> (Int32, String, Int32, String) {
        let (s, out, err) = try d.ctl(["verify-export", path, "--key", key])
        let (ps, pout) = try ExportProofTests.python([ExportProofTests.script, path, "--key", key])
        return (s, out + err, ps, pout)
    }

    @Test func anErasedSubjectReadsAsErasedEverywhereAndEveryProofHolds() async throws {
        let d = Daemon("erasure", args: ["--personal-fields", "commit"])
        defer { d.cleanup() }
        try d.start()
        let (s, _, err) = try await d.ctlOffPool(
            ["append", "--socket", d.socket], stdin: (0..<30).map(Self.event).joined(separator: "\n") + "\n")
        #expect(s == 0, "\(err)")
        let token = try d.token(org: "acme")
        let key = try d.ctl(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)

        // Read: the values beside the commitments; a filter and a search by the subject's id.
        let page = try await d.json("/v1/orgs/acme/entries?limit=100&order=asc", token: token)
        let entries = try #require(page["entries"] as? [[String: Any]])
        let first = try #require(entries.first { ($0["seq"] as? Int) == 0 })
        let personal = try #require(first["personal"] as? [String: [String: Any]])
        #expect(personal["actor.id"]?["value"] as? String == "usr_ann")
        #expect(personal["metadata.email"]?["value"] as? String == "ann@example.com")
        #expect(!"\(first["entry"] ?? "")".contains("usr_ann"))
        let byActor = try await d.json("/v1/orgs/acme/entries?actor=human:usr_ann&limit=100", token: token)
        #expect((byActor["entries"] as? [Any])?.count == 15)
        let bySearch = try await d.json("/v1/orgs/acme/entries?q=usr_bob&limit=100", token: token)
        #expect((bySearch["entries"] as? [Any])?.count == 15)

        // An export before: every value opens its commitment, in both verifiers: 15 × 5 of
        // Ann's, 15 × 4 of Bob's, the token's and the export's own entries' human actors.
        let (es, before) = try await d.http("/v1/orgs/acme/export", token: token)
        #expect(es == 200)
        let beforePath = d.root + "/before.ndjson"
        try before.write(to: URL(fileURLWithPath: beforePath))
        let (v1, o1, p1, po1) = try verifyBoth(d, beforePath, key)
        #expect(v1 == 0 && o1.contains("OK: complete") && o1.contains("PERSONAL: 137 personal values"), "\(o1)")
        #expect(p1 == 0 && po1.contains("OK: complete") && po1.contains("137 personal values"), "\(po1)")

        // Refused while a legal hold stands, and for a subject the org does not have.
        let (hs, hold, herr) = try d.ctl([
            "hold", "create", d.data, "--org", "acme", "--reason", "litigation", "--authority", "court",
            "--socket", d.socket,
        ])
        #expect(hs == 0, "\(herr)")
        let (rs, _, refused) = try d.ctl([
            "erase", d.data, "--org", "acme", "--subject", "usr_ann", "--reason", "r", "--authority", "DPO",
        ])
        #expect(rs != 0 && refused.contains("legal hold") && refused.contains("release"), "\(refused)")
        let (ls, _, lerr) = try d.ctl([
            "hold", "release", d.data, hold.trimmingCharacters(in: .whitespacesAndNewlines), "--authority", "court",
            "--socket", d.socket,
        ])
        #expect(ls == 0, "\(lerr)")
        let (us, _, unknown) = try d.ctl([
            "erase", d.data, "--org", "acme", "--subject", "usr_nobody", "--reason", "r", "--authority", "DPO",
        ])
        #expect(us != 0 && unknown.contains("holds no personal values of subject usr_nobody"), "\(unknown)")

        // Erased through the daemon's socket.
        let (xs, xout, xerr) = try d.ctl([
            "erase", d.data, "--org", "acme", "--subject", "usr_ann", "--reason", "PRIV-1", "--authority", "DPO Jane",
        ])
        #expect(xs == 0 && xout.contains("recorded as entry"), "\(xout) \(xerr)")
        let after = try await d.json("/v1/orgs/acme/entries/0", token: token)
        let erased = try #require(after["personal"] as? [String: [String: Any]])
        #expect(erased.count == 5)
        #expect(erased.values.allSatisfy { ($0["erased"] as? [String: Any])?["authority"] as? String == "DPO Jane" })
        let bob = try await d.json("/v1/orgs/acme/entries/1", token: token)
        #expect((bob["personal"] as? [String: [String: Any]])?["actor.id"]?["value"] as? String == "usr_bob")

        // An export after: the erased fields are ERASED under the signed record, in both verifiers.
        let (es2, exported) = try await d.http("/v1/orgs/acme/export", token: token)
        #expect(es2 == 200)
        let lines = String(decoding: exported, as: UTF8.self).split(separator: "\n").map(String.init)
        let afterPath = d.root + "/after.ndjson"
        try write(afterPath, lines)
        let (v2, o2, p2, po2) = try verifyBoth(d, afterPath, key)
        #expect(v2 == 0 && o2.contains("OK: complete") && o2.contains("75 fields erased"), "\(o2)")
        #expect(o2.contains("entry 0 actor.id: ERASED (entry "), "\(o2)")
        #expect(p2 == 0 && po2.contains("OK: complete") && po2.contains("75 fields erased"), "\(po2)")
        #expect(po2.contains("entry 0 actor.id: ERASED (entry "), "\(po2)")

        // Tampered: a value changed, an erasure claimed for a field that has its value, a nonce
        // changed for one field of a group, the records taken out of the trailer. Each fails in
        // both verifiers.
        func tampered(_ name: String, _ edit: (inout [String]) -> Void) throws {
            var t = lines
            edit(&t)
            let path = d.root + "/\(name).ndjson"
            try write(path, t)
            let (a, ao, b, bo) = try verifyBoth(d, path, key)
            #expect(a == 1 && ao.hasPrefix("FAILED"), "\(name): \(ao)")
            #expect(b == 1 && bo.hasPrefix("FAILED"), "\(name): \(bo)")
        }
        let bobLine = try #require(lines.firstIndex { $0.contains(#""value":"usr_bob""#) })
        try tampered("value") { $0[bobLine] = $0[bobLine].replacingOccurrences(of: "usr_bob", with: "usr_eve") }
        try tampered("claim") { t in
            let record = lines.last { $0.contains("\"erasures\"") }.flatMap { l -> Int? in
                guard let o = try? JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any],
                    let e = (o["erasures"] as? [[String: Any]])?.first
                else { return nil }
                return e["seq"] as? Int
            }
            guard let record,
                let r = t[bobLine].range(of: #"\{"nonce":"[0-9a-f]+","value":"usr_bob"\}"#, options: .regularExpression)
            else { return }
            t[bobLine].replaceSubrange(r, with: #"{"erased":{"authority":"DPO Jane","entry":\#(record)}}"#)
        }
        try tampered("nonce") { t in
            // One of Bob's fields shown with a nonce of its own: his fields share one commitment
            // (format-spec §5.4.1), so they open with one nonce or not at all.
            guard
                let r = t[bobLine].range(
                    of: #""nonce":"[0-9a-f]{32}""#, options: [.regularExpression, .backwards])
            else { return }
            t[bobLine].replaceSubrange(r, with: #""nonce":"000102030405060708090a0b0c0d0e0f""#)
        }
        let trailer = lines.count - 1
        try tampered("records") { t in
            guard var o = try? JSONSerialization.jsonObject(with: Data(t[trailer].utf8)) as? [String: Any] else {
                return
            }
            o["erasures"] = nil
            t[trailer] = String(decoding: (try? JSONSerialization.data(withJSONObject: o)) ?? Data(), as: UTF8.self)
        }

        // The whole directory verifies; nothing in it holds the erased person's values.
        #expect(d.stop() == 0)
        let (vs, vout, verr) = try d.ctl(["verify", d.data])
        #expect(
            vs == 0 && vout.contains("ERASED (entry ") && vout.contains("authority DPO Jane): 75 fields"),
            "\(vout) \(verr)")
        for clear in Self.clearValues {
            #expect(Self.holding(clear, under: d.data).isEmpty, "\(clear) is in \(Self.holding(clear, under: d.data))")
        }
    }

    /// kill -9 of `auditctl erase` (no daemon: straight into the log) at `pause`'s moment; the
    /// next start of auditd must find the record and no key, the erasure complete.
    func crash(at pause: String, keyAtKill: Bool, until reached: @escaping (Daemon) -> Bool) throws {
        let d = Daemon("erasure-crash", args: ["--personal-fields", "commit"])
        defer { d.cleanup() }
        try d.start()
        let (s, _, err) = try d.ctl(
            ["append", "--socket", d.socket], stdin: (0..<10).map(Self.event).joined(separator: "\n") + "\n")
        #expect(s == 0, "\(err)")
        #expect(d.stop() == 0)
        let hit = try ChildProcess.killed(
            Daemon.product("auditctl"),
            ["erase", d.data, "--org", "acme", "--subject", "usr_ann", "--reason", "r", "--authority", "DPO"],
            in: d.root, at: pause
        ) { reached(d) }
        #expect(hit, "the erasure never reached the moment to crash at")
        #expect(Self.holding("usr_ann", under: d.data + "/personal").isEmpty == !keyAtKill)
        // The record is in the log; the directory verifies as it stands (key or no key).
        let (vs, vout, verr) = try d.ctl(["verify", d.data])
        #expect(vs == 0, "\(vout) \(verr)")
        // The next start completes it.
        try d.start()
        let token = try d.token(org: "acme")
        let sem = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var shown: [String: Any] = [:]
        Task {
            shown = (try? await d.json("/v1/orgs/acme/entries/0", token: token)) ?? [:]
            sem.signal()
        }
        sem.wait()
        let personal = shown["personal"] as? [String: [String: Any]] ?? [:]
        #expect(personal.count == 5 && personal.values.allSatisfy { $0["erased"] != nil }, "\(shown)")
        #expect(!FileManager.default.fileExists(atPath: d.data + "/personal/erasing"))
        #expect(d.stop() == 0)
        let (v2, o2, e2) = try d.ctl(["verify", d.data])
        #expect(v2 == 0 && o2.contains("25 ERASED"), "\(o2) \(e2)")
        for clear in Self.clearValues {
            #expect(Self.holding(clear, under: d.data).isEmpty, "\(clear) is in \(Self.holding(clear, under: d.data))")
        }
    }

    /// The log's size in entries, from its leaf level.
    static func leaves(_ d: Daemon) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: d.data + "/tree/level-00.hashes")[.size]) as? Int ?? 0) / 32
    }

    @Test func aKillBetweenTheRecordAndTheKeyIsCompletedAtTheNextStart() throws {
        try crash(at: "AUDITLOG_TEST_PAUSE_AFTER_ERASURE_RECORD", keyAtKill: true) { d in
            FileManager.default.fileExists(atPath: d.data + "/personal/erasing") && Self.leaves(d) == 11
        }
    }

    @Test func aKillAfterTheKeyIsGoneLeavesItGone() throws {
        try crash(at: "AUDITLOG_TEST_PAUSE_AFTER_ERASURE_KEY", keyAtKill: false) { d in
            FileManager.default.fileExists(atPath: d.data + "/personal/erasing")
                && Self.holding("usr_ann", under: d.data + "/personal").isEmpty
        }
    }
}
