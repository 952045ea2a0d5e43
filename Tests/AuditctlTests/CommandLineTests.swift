import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 7 B10: what a person types at a shell never crashes the tools.
@Suite struct CommandLineTests {
    /// `auditctl import d --key k`: a key path with no directory part.
    @Test func importWithABareKeyFileName() throws {
        let dir = temporaryDirectory("barekey")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, _, err) = try run(
            "auditctl", ["import", "d", "--key", "k", "--quiet"], stdin: Data(events(20).utf8), in: dir)
        #expect(status == 0, "\(err)")
        #expect(FileManager.default.fileExists(atPath: dir + "/k"))
        let mode = (try FileManager.default.attributesOfItem(atPath: dir + "/k")[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o600)
        let (vs, _, verr) = try run("auditctl", ["verify", "d", "--quiet"], in: dir)
        #expect(vs == 0, "\(verr)")
    }

    /// `auditd | head -n1`: the reader of its output goes away; the daemon keeps running and
    /// stops cleanly on SIGTERM.
    @Test func daemonSurvivesAClosedStandardOutput() throws {
        let dir = temporaryDirectory("pipe")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: builtProduct("auditd"))
        p.arguments = [
            "--data", dir + "/data", "--socket", dir + "/s.sock", "--http-port", "0", "--log-level", "error",
        ]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try out.fileHandleForReading.close()
        try p.run()
        // Wait for the socket: by then the daemon has tried to announce it on the closed pipe.
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: dir + "/s.sock") && Date() < deadline && p.isRunning {
            usleep(50_000)
        }
        usleep(300_000)
        #expect(p.isRunning, "auditd died writing to a closed pipe (status \(p.terminationStatus))")
        p.terminate()
        p.waitUntilExit()
        #expect(p.terminationReason == .exit && p.terminationStatus == 0)
    }
}
