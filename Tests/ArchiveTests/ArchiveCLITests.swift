import Archive
import AuditBase
import AuditEntries
import ChainIndex
import Foundation
import SegmentStore
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The archive through `auditctl`, with real processes and a real crash.
@Suite(.serialized) struct ArchiveCLITests {
    static func product(_ name: String, file: String = #filePath) -> String {
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let root = URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let c = [
            here.appendingPathComponent(name).path, here.deletingLastPathComponent().appendingPathComponent(name).path,
            root.appendingPathComponent(".build/debug/\(name)").path,
        ]
        return c.first { FileManager.default.isExecutableFile(atPath: $0) } ?? c[2]
    }

    @discardableResult
    func ctl(_ args: [String], stdin: String = "", env: [String: String] = [:]) throws -> (Int32, String) {
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: Self.product("auditctl"))
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let o = Pipe()
        let i = Pipe()
        p.standardOutput = o
        p.standardError = o
        p.standardInput = i
        try p.run()
        let input = Data(stdin.utf8)
        Thread {
            i.fileHandleForWriting.write(input)
            try? i.fileHandleForWriting.close()
        }.start()
        let out = o.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    /// A stopped log of at least 4 sealed segments of entries received "now".
    ///
    /// Four imports of 100 entries, each more than a segment's bytes: a segment rotates only
    /// between group commits, and under load one import's batches can be committed as one
    /// group (one block), so a single import of 400 made 2 to 4 segments depending on timing.
    func makeLog() throws -> (String, String) {
        let root = NSTemporaryDirectory() + "archcli-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for part in 0..<4 {
            var input = ""
            for i in part * 100..<(part + 1) * 100 {
                input +=
                    #"{"org":"org_\#(i % 3)","category":"access","action":"access.granted","actor":{"type":"human","id":"u"},"target":{"type":"p","id":"p\#(i)"},"outcome":"success","source":{"service":"svc"},"occurred_at":"2025-03-01T00:00:00Z","metadata":{"pad":"\#(String(repeating: "x", count: 300))"}}"#
                    + "\n"
            }
            let (s, out) = try ctl(
                ["import", root + "/data", "--segment-bytes", "40000", "--batch", "100"], stdin: input)
            guard s == 0 else { throw CLIFailed(out) }
        }
        return (root, root + "/data")
    }

    struct CLIFailed: Error {
        var text: String
        init(_ t: String) { text = t }
    }

    @Test func crashBetweenCopyAndRetireLosesNothing() throws {
        let (root, data) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let archive = root + "/archive"
        let sealedBefore = try FileManager.default.contentsOfDirectory(atPath: DataDirectory(data).segments).filter {
            $0.hasSuffix(".seg")
        }.count
        #expect(sealedBefore >= 3)
        // The child verifies its archived copy, then pauses before retiring the hot files: kill it there.
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: Self.product("auditctl"))
        p.arguments = ["archive", "run", data, "--archive", archive, "--hot-window", "0"]
        p.environment = ProcessInfo.processInfo.environment.merging(["AUDITLOG_TEST_PAUSE_AFTER_COPY": "30"]) { $1 }
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        var waited = 0
        while (try? FileManager.default.contentsOfDirectory(atPath: archive))?.contains(where: {
            $0.hasPrefix("bundle-")
        }) != true && waited < 300 {
            usleep(50_000)
            waited += 1
        }
        usleep(200_000)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        // Both copies exist: the hot one is in charge, the log verifies, nothing is lost.
        let bundles = try FileManager.default.contentsOfDirectory(atPath: archive).filter { $0.hasPrefix("bundle-") }
        #expect(bundles.count == 1)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: DataDirectory(data).segments).filter {
                $0.hasSuffix(".seg")
            }.count == sealedBefore)
        var (s, out) = try ctl(["verify", data, "--quiet"])
        #expect(s == 0 && out.contains("OK: 400 entries"), "\(out)")
        // Running again finishes the job, reusing the verified bundle.
        (s, out) = try ctl(["archive", "run", data, "--archive", archive, "--hot-window", "0"])
        #expect(s == 0, "\(out)")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: DataDirectory(data).segments).filter {
                $0.hasSuffix(".seg")
            }.isEmpty)
        (s, out) = try ctl(["archive", "verify", data, "--archive", archive])
        #expect(s == 0 && out.components(separatedBy: "OK: ").count - 1 == sealedBefore, "\(out)")
        (s, out) = try ctl(["verify", data, "--quiet"])
        #expect(s == 0, "\(out)")
        (s, out) = try ctl(["archive", "restore", data, "--archive", archive, "--all"])
        #expect(s == 0 && out.contains("restored"), "\(out)")
        (s, out) = try ctl(["verify", data, "--quiet"])
        #expect(s == 0 && out.contains("OK: 400 entries"), "\(out)")
    }

    @Test func holdsRetentionAndPurgeThroughTheCLIAreAudited() throws {
        let (root, data) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let archive = root + "/archive"
        var (s, out) = try ctl(["archive", "run", data, "--archive", archive, "--hot-window", "0"])
        #expect(s == 0, "\(out)")
        (s, out) = try ctl(["retention", "set", data, "--org", "org_1", "--years", "3"])
        #expect(s != 0 && out.contains("never shorter"), "\(out)")
        (s, out) = try ctl(["retention", "set", data, "--org", "org_1", "--years", "10"])
        #expect(s == 0, "\(out)")
        (s, out) = try ctl([
            "hold", "create", data, "--org", "org_2", "--reason", "subpoena 42", "--authority", "Legal",
        ])
        #expect(s == 0, "\(out)")
        let holdId = out.split(separator: "\n").last.map(String.init) ?? ""
        (s, out) = try ctl([
            "archive", "purge", data, "--archive", archive, "--dry-run", "--now", "2040-01-01T00:00:00Z",
        ])
        #expect(s == 0 && out.contains("under legal hold \(holdId)") && !out.contains("WOULD PURGE"), "\(out)")
        (s, out) = try ctl(["hold", "release", data, holdId, "--authority", "Legal"])
        #expect(s == 0, "\(out)")
        (s, out) = try ctl(["archive", "purge", data, "--archive", archive, "--now", "2030-01-01T00:00:00Z"])
        #expect(s == 0 && out.contains("nothing is eligible"), "\(out)")  // org_1 is kept 10 years
        (s, out) = try ctl(["archive", "purge", data, "--archive", archive, "--now", "2040-01-01T00:00:00Z"])
        #expect(s == 0 && out.contains("purged"), "\(out)")
        (s, out) = try ctl(["archive", "list", data, "--archive", archive])
        #expect(out.contains("purged"), "\(out)")
        (s, out) = try ctl(["verify", data, "--quiet"])
        #expect(s == 0, "\(out)")
        // Each operator action is in the log, in the affected org's chain.
        let store = try Ledger.segmentStore(data, retired: ArchiveTier(), readOnly: true)
        var actions: [String] = []
        try store.scan(from: 400) { r in
            let p = try RecordPayload(bytes: r.payload)
            if let a = CanonicalScan.topLevelString(p.content, key: "action") { actions.append(a) }
            return true
        }
        #expect(actions.contains("retention.policy.changed"))
        #expect(actions.contains("legal_hold.initiated") && actions.contains("legal_hold.released"))
        #expect(actions.filter { $0 == "audit_log.purged" }.count >= 3)
    }
}
