import Foundation
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A Python script beside this file, run with python3, serving on a loopback port it prints
/// as "listening PORT" (the console's tamper proxy, the hostile witness).
final class LoopbackScript: @unchecked Sendable {
    let process = ChildProcess()
    let port: Int

    init(_ name: String, _ args: [String], file: String = #filePath) throws {
        let script = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(name).path
        guard
            let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else {
            throw DaemonFailed(
                message: "python3 is missing: this test runs \(name) with it (apt-get install -y python3)")
        }
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script] + args
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let (line, _) = readOutput(out.fileHandleForReading, seconds: 10) { $0.contains("\n") }
        guard
            let p = line.split(separator: " ").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        else {
            kill(process.processIdentifier, SIGKILL)
            throw DaemonFailed(message: "\(name) did not start: \(line)")
        }
        port = p
    }

    /// SIGKILL: children of the test runner inherit its blocked SIGTERM.
    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
