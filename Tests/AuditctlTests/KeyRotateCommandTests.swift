import Foundation
import TestSupport
import Testing

/// `auditctl key rotate` with no daemon running: straight into the log with `--key`, the key
/// file replaced by the new one, and `auditctl verify` with the first key checking both the
/// checkpoints and log.json's statements against the log's own records.
@Suite struct KeyRotateCommandTests {
    @Test func anOfflineRotationHandsOverReplacesTheKeyFileAndVerifies() throws {
        let dir = temporaryDirectory("rotate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (s1, _, e1) = try run(
            "auditctl", ["import", "d", "--key", "k", "--quiet"], stdin: Data(events(30).utf8), in: dir)
        #expect(s1 == 0, "\(e1)")
        let first = try run("auditctl", ["key", "d"], in: dir).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let origin = String(first.prefix { $0 != "+" })
        // A key named for another log, and the current key itself, are refused.
        #expect(try run("auditctl", ["key", "generate", "--name", "other.test/log", "--out", "other"], in: dir).0 == 0)
        let (os, _, oerr) = try run("auditctl", ["key", "rotate", "d", "--new-key", "other", "--key", "k"], in: dir)
        #expect(os != 0 && oerr.contains("named by its origin"), "\(oerr)")
        let (gs, second, _) = try run("auditctl", ["key", "generate", "--name", origin, "--out", "k2"], in: dir)
        #expect(gs == 0)
        #expect(
            try run("auditctl", ["key", "generate", "--name", origin, "--out", "k2"], in: dir).0 != 0,
            "keys are never overwritten")
        try FileManager.default.copyItem(atPath: dir + "/k", toPath: dir + "/k.first")
        let (rs, rout, rerr) = try run(
            "auditctl", ["key", "rotate", "d", "--new-key", "k2", "--key", "k", "--grace", "5"], in: dir)
        #expect(rs == 0 && rout.contains("at tree size 31 (recorded as entry 30)"), "\(rout)\(rerr)")
        // The key file now holds the new key; nothing is left staged.
        let k = try String(contentsOfFile: dir + "/k", encoding: .utf8)
        let k2 = try String(contentsOfFile: dir + "/k2", encoding: .utf8)
        #expect(k == k2)
        #expect(!FileManager.default.fileExists(atPath: dir + "/k.next"))
        // More entries with the new key, then verification with the first key only.
        let (s2, _, e2) = try run(
            "auditctl", ["import", "d", "--key", "k", "--quiet"], stdin: Data(events(10, from: 30).utf8), in: dir)
        #expect(s2 == 0, "\(e2)")
        let (vs, vout, _) = try run("auditctl", ["verify", "d", "--quiet", "--key", first], in: dir)
        #expect(vs == 0 && vout.contains("OK: 41 entries") && !vout.contains("note:"), "\(vout)")
        let (cs, chain, _) = try run("auditctl", ["key", "d", "--chain"], in: dir)
        #expect(
            cs == 0
                && chain.contains(
                    "handed on at size 31 (old key signs up to 36) to \(second.trimmingCharacters(in: .whitespacesAndNewlines))"
                ), "\(chain)")

        // A stop between the log's record of the handover and the key file's replacement: the
        // old key back in the file, the new one staged. The next open finishes it.
        try FileManager.default.removeItem(atPath: dir + "/k")
        try FileManager.default.copyItem(atPath: dir + "/k.first", toPath: dir + "/k")
        try FileManager.default.copyItem(atPath: dir + "/k2", toPath: dir + "/k.next")
        let (s3, _, e3) = try run(
            "auditctl", ["import", "d", "--key", "k", "--quiet"], stdin: Data(events(5, from: 40).utf8), in: dir)
        #expect(s3 == 0 && e3.contains("now replaces"), "\(e3)")
        #expect(try String(contentsOfFile: dir + "/k", encoding: .utf8) == k2)
        #expect(!FileManager.default.fileExists(atPath: dir + "/k.next"))
        // A staged key the log never took is left alone, named, and the log opens as before.
        #expect(try run("auditctl", ["key", "generate", "--name", origin, "--out", "k.next"], in: dir).0 == 0)
        let (s4, _, e4) = try run(
            "auditctl", ["import", "d", "--key", "k", "--quiet"], stdin: Data(events(5, from: 45).utf8), in: dir)
        #expect(s4 == 0 && e4.contains("has not taken over"), "\(e4)")
        #expect(FileManager.default.fileExists(atPath: dir + "/k.next"))
    }

    /// `auditctl key rotate` killed with -9 at a pause (an environment variable the code reads
    /// in tests only) once `reached` holds; returns the directory, the first key and the keys'
    /// paths. The caller checks what the next open makes of it.
    func killedRotation(at pause: String, until reached: @escaping (String) -> Bool) throws -> (String, String) {
        let dir = temporaryDirectory("rotate-crash")
        let (s1, _, e1) = try run(
            "auditctl", ["import", "d", "--key", "k", "--quiet"], stdin: Data(events(10).utf8), in: dir)
        #expect(s1 == 0, "\(e1)")
        let first = try run("auditctl", ["key", "d"], in: dir).1.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(
            try run(
                "auditctl", ["key", "generate", "--name", String(first.prefix { $0 != "+" }), "--out", "k2"], in: dir
            )
            .0 == 0)
        let hit = try ChildProcess.killed(
            builtProduct("auditctl"), ["key", "rotate", "d", "--new-key", "k2", "--key", "k", "--grace", "0"],
            in: dir, at: pause
        ) { reached(dir) }
        #expect(hit, "the rotation never reached the moment to crash at")
        return (dir, first)
    }

    static func leaves(_ dir: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: dir + "/d/tree/level-00.hashes")[.size]) as? Int ?? 0) / 32
    }

    /// Killed once the handover's entry is durable, before its statement is in log.json: the
    /// old key stays in force, the entry is named as a handover that never finished, the
    /// staged key is left (and named), and the next rotation goes through.
    @Test func aKillBeforeTheStatementIsRecordedLeavesTheOldKeyInForce() throws {
        let (dir, first) = try killedRotation(at: "AUDITLOG_TEST_PAUSE_AFTER_HANDOVER_RECORD") {
            FileManager.default.fileExists(atPath: $0 + "/k.next") && Self.leaves($0) == 11
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (vs, vout, _) = try run("auditctl", ["verify", "d", "--quiet", "--key", first], in: dir)
        #expect(vs == 0 && vout.contains("handover did not finish"), "\(vout)")
        let (s2, _, e2) = try run(
            "auditctl", ["import", "d", "--key", "k", "--quiet"], stdin: Data(events(5, from: 10).utf8), in: dir)
        #expect(s2 == 0 && e2.contains("has not taken over"), "\(e2)")
        #expect(try run("auditctl", ["key", "d", "--chain"], in: dir).1 == first + "\n")
        let (rs, rout, rerr) = try run(
            "auditctl", ["key", "rotate", "d", "--new-key", "k2", "--key", "k", "--grace", "0"], in: dir)
        #expect(rs == 0 && rout.contains("handed the log's key on"), "\(rout)\(rerr)")
        #expect(try run("auditctl", ["verify", "d", "--quiet", "--key", first], in: dir).0 == 0)
    }

    /// Killed after log.json records the statement, before the key file is replaced: the next
    /// open puts the staged key in place, and the log verifies with the first key.
    @Test func aKillBeforeTheKeyFileIsReplacedIsFinishedAtTheNextOpen() throws {
        let (dir, first) = try killedRotation(at: "AUDITLOG_TEST_PAUSE_BEFORE_KEY_FILE") {
            ((try? String(contentsOfFile: $0 + "/d/log.json", encoding: .utf8)) ?? "").contains("key_successions")
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let k2 = try String(contentsOfFile: dir + "/k2", encoding: .utf8)
        #expect(
            try String(contentsOfFile: dir + "/k", encoding: .utf8) != k2, "the key file was replaced before the kill")
        let (s2, _, e2) = try run(
            "auditctl", ["import", "d", "--key", "k", "--quiet"], stdin: Data(events(5, from: 10).utf8), in: dir)
        #expect(s2 == 0 && e2.contains("now replaces"), "\(e2)")
        #expect(try String(contentsOfFile: dir + "/k", encoding: .utf8) == k2)
        let (vs, vout, _) = try run("auditctl", ["verify", "d", "--quiet", "--key", first], in: dir)
        #expect(vs == 0 && vout.contains("OK: 16 entries") && !vout.contains("note:"), "\(vout)")
    }
}
