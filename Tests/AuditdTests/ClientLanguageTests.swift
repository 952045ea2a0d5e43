import Foundation
import Testing

/// Issue 11: the clients in other languages, each tested against the real daemon.
@Suite struct ClientLanguageTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test func thePythonClientAppendsPipelinesAndRetriesAcrossARestart() throws {
        let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let python else {
            Issue.record("python3 is missing: install it (apt-get install -y python3; .ci/run and scripts/setup do)")
            return
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-m", "unittest", "discover", "-s", Self.repo + "/clients/python/tests", "-v"]
        var env = ProcessInfo.processInfo.environment
        env["AUDITD_BIN"] = Daemon.product("auditd")
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0 && text.contains("OK"), "python client tests:\n\(text)")
        #expect(text.contains("Ran 4 tests"), "\(text)")
    }

    @Test func theGoClientAppendsPipelinesAndRetriesAcrossARestart() throws {
        let go = ["/usr/bin/go", "/usr/local/go/bin/go", "/usr/lib/go/bin/go"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let go else {
            Issue.record("go is missing: install it (apt-get install -y golang-go; .ci/run and scripts/setup do)")
            return
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: go)
        p.arguments = ["test", "./...", "-count=1", "-v"]
        p.currentDirectoryURL = URL(fileURLWithPath: Self.repo + "/clients/go")
        var env = ProcessInfo.processInfo.environment
        env["AUDITD_BIN"] = Daemon.product("auditd")
        env["GOFLAGS"] = "-mod=mod"
        env["GOPROXY"] = "off"
        if env["HOME"] == nil { env["HOME"] = NSTemporaryDirectory() }
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0 && text.contains("--- PASS: TestRetryAcrossARestartStoresEachKeyedEntryOnce"), "go client tests:\n\(text)")
    }
}
