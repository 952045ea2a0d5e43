import Foundation
import Testing

/// Issue 8: an auditor who kept a signed checkpoint detects a log rolled back or forked after
/// it, with `auditctl verify DIR --checkpoint FILE`; and the signer itself refuses to build
/// the shorter log with the key whose state it keeps.
@Suite struct PinnedCheckpointTests {
    @Test func aKeptCheckpointCatchesARollbackAndAFork() throws {
        let root = temporaryDirectory("pinned")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let key = root + "/k.key"
        #expect(
            try run("auditctl", ["import", root + "/a", "--key", key, "--quiet"], stdin: Data(events(50).utf8)).0 == 0)
        let (cs, cp, _) = try run("auditctl", ["checkpoint", root + "/a"])
        #expect(cs == 0)
        try cp.write(toFile: root + "/kept.note", atomically: true, encoding: .utf8)
        let pub = try run("auditctl", ["key", root + "/a"]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(
            try run("auditctl", ["verify", root + "/a", "--quiet", "--key", pub, "--checkpoint", root + "/kept.note"]).0
                == 0)

        // The signer keeps its state beside the key: a shorter log with that key is refused.
        let (s0, _, e0) = try run(
            "auditctl", ["import", root + "/b", "--key", key, "--quiet"], stdin: Data(events(30).utf8))
        #expect(s0 != 0 && e0.contains("rolled back"), "\(e0)")

        // With a copy of the key but not its state: a rolled-back log, and a forked one.
        try FileManager.default.copyItem(atPath: key, toPath: root + "/stolen.key")
        #expect(
            try run(
                "auditctl", ["import", root + "/c", "--key", root + "/stolen.key", "--quiet"],
                stdin: Data(events(30).utf8)
            ).0 == 0)
        let (s1, o1, _) = try run(
            "auditctl", ["verify", root + "/c", "--quiet", "--key", pub, "--checkpoint", root + "/kept.note"])
        #expect(s1 == 1 && o1.contains("rolled back"), "\(o1)")
        try? FileManager.default.removeItem(atPath: root + "/stolen.key.state")
        #expect(
            try run(
                "auditctl", ["import", root + "/d", "--key", root + "/stolen.key", "--quiet"],
                stdin: Data(events(50, from: 1000).utf8)
            ).0 == 0)
        let (s2, o2, _) = try run(
            "auditctl", ["verify", root + "/d", "--quiet", "--key", pub, "--checkpoint", root + "/kept.note"])
        #expect(s2 == 1 && o2.contains("forked"), "\(o2)")
    }
}
