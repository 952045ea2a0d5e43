import Foundation
import TestSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The real auditd binary in a scratch directory, on a real socket and a real loopback port.
final class Daemon: @unchecked Sendable {
    let root: String
    var process: ChildProcess?
    var port = 0
    var socket: String { root + "/auditd.sock" }
    var data: String { root + "/data" }
    /// The daemon's standard error (its log at --log-level warning).
    var logPath: String { root + "/auditd.log" }
    /// The end of the daemon's log, for failure messages.
    func logTail(_ n: Int = 2000) -> String {
        String((try? String(contentsOfFile: logPath, encoding: .utf8))?.suffix(n) ?? "")
    }
    /// The daemon's threads (name, state, where the kernel has it waiting), for failure
    /// messages about something that stalled.
    func threads() -> String {
        guard let pid = process?.processIdentifier else { return "(not running)" }
        let dir = "/proc/\(pid)/task"
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return ids.sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }.map { t in
            func read(_ f: String) -> String {
                ((try? String(contentsOfFile: "\(dir)/\(t)/\(f)", encoding: .utf8)) ?? "?")
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let state = read("stat").split(separator: ")").last?.split(separator: " ").first.map(String.init) ?? "?"
            return "\(t) \(read("comm")) \(state) \(read("wchan"))"
        }.joined(separator: "\n")
    }
    var extraArgs: [String]
    /// Added to the daemon's and auditctl's environment.
    var environment: [String: String] = [:]
    /// A read replica (`--replica-of`): it has no ingest socket to wait for.
    var replica = false

    init(_ tag: String, args: [String] = []) {
        root = NSTemporaryDirectory() + "auditd-\(tag)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        extraArgs = args
    }

    static func product(_ name: String, file: String = #filePath) -> String {
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let rootDir = URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let candidates = [
            here.appendingPathComponent(name).path, here.deletingLastPathComponent().appendingPathComponent(name).path,
            rootDir.appendingPathComponent(".build/debug/\(name)").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[2]
    }

    /// Starts the daemon and waits until both the socket and the read port are up.
    func start() throws {
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: Self.product("auditd"))
        p.currentDirectoryURL = URL(fileURLWithPath: root)
        p.arguments =
            [
                "--data", data, "--socket", socket, "--http-port", "0", "--verify-interval", "1", "--log-level",
                "warning",
            ] + extraArgs
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe()
        p.standardOutput = out
        // Its log (warnings and errors) is kept beside its data, for a failing test to show.
        FileManager.default.createFile(atPath: logPath, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: logPath) ?? FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        process = p
        let (text, up) = readOutput(out.fileHandleForReading) {
            $0.contains("read port http://127.0.0.1:") && (self.replica || $0.contains("ingest socket"))
        }
        guard up, let r = text.range(of: "read port http://127.0.0.1:") else {
            throw DaemonFailed(message: "auditd did not come up: \(text) \(logTail())")
        }
        port = Int(text[r.upperBound...].prefix { $0.isNumber }) ?? 0
        // Keep draining stdout so the daemon never blocks on a full pipe.
        Thread { while !out.fileHandleForReading.availableData.isEmpty {} }.start()
    }

    func kill9() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// SIGTERM, and the exit status.
    @discardableResult
    func stop() -> Int32 {
        guard let p = process else { return -1 }
        p.terminate()
        p.waitUntilExit()
        process = nil
        return p.terminationStatus
    }

    /// `stop` on a thread of its own, for async tests, with how long the daemon took to exit,
    /// measured on that thread: the wait for the cooperative pool to resume the caller (seconds,
    /// when other tests hold its two threads) is not the daemon's.
    func stopOffPool() async -> (status: Int32, seconds: Double) {
        await withCheckedContinuation { done in
            Thread {
                let started = Date()
                let status = self.stop()
                done.resume(returning: (status, Date().timeIntervalSince(started)))
            }.start()
        }
    }

    func cleanup() {
        if process != nil { kill9() }
        try? FileManager.default.removeItem(atPath: root)
    }

    /// `ctl` on a thread of its own, for async tests: waiting for a process on one of the few
    /// threads of the cooperative pool (two on this machine) stalls every other async test.
    func ctlOffPool(_ args: [String], stdin: String = "") async throws -> (Int32, String, String) {
        try await withCheckedThrowingContinuation { c in
            Thread.detachNewThread { c.resume(with: Result { try self.ctl(args, stdin: stdin) }) }
        }
    }

    /// Runs auditctl to completion.
    @discardableResult
    func ctl(_ args: [String], stdin: String = "") throws -> (Int32, String, String) {
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: Self.product("auditctl"))
        p.currentDirectoryURL = URL(fileURLWithPath: root)
        p.arguments = args
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let o = Pipe()
        let e = Pipe()
        let i = Pipe()
        p.standardOutput = o
        p.standardError = e
        p.standardInput = i
        try p.run()
        let input = Data(stdin.utf8)
        Thread {
            i.fileHandleForWriting.write(input)
            try? i.fileHandleForWriting.close()
        }.start()
        let od = o.fileHandleForReading.readDataToEndOfFile()
        let ed = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: od, as: UTF8.self), String(decoding: ed, as: UTF8.self))
    }

    func token(org: String?) throws -> String {
        let (s, out, err) = try ctl(
            ["token", "create", data, "--socket", socket] + (org.map { ["--org", $0] } ?? ["--operator"]))
        guard s == 0 else { throw DaemonFailed(message: "token create failed: \(err)") }
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A GET (or other method) on the read port: status and body.
    func http(
        _ path: String, token: String?, method: String = "GET", scheme: String = "Bearer"
    ) async throws -> (Int, Data) {
        guard let url = URL(string: "http://127.0.0.1:\(port)\(path)") else {
            throw DaemonFailed(message: "bad path \(path)")
        }
        var req = URLRequest(url: url)
        req.httpMethod = method
        if let token { req.setValue("\(scheme) \(token)", forHTTPHeaderField: "Authorization") }
        let (d, r) = try await session.data(for: req)
        return ((r as? HTTPURLResponse)?.statusCode ?? 0, d)
    }

    /// This daemon's own HTTP client. URLSession.shared holds at most 6 connections per host
    /// for the whole test process: a test's long-lived requests (feeds, a page waiting behind a
    /// flood) would queue every other test's requests to 127.0.0.1 behind them.
    let session: URLSession = {
        let c = URLSessionConfiguration.ephemeral
        c.httpMaximumConnectionsPerHost = 64
        return URLSession(configuration: c)
    }()

    func json(_ path: String, token: String?) async throws -> [String: Any] {
        let (s, d) = try await http(path, token: token)
        guard s == 200, let o = try JSONSerialization.jsonObject(with: d) as? [String: Any] else {
            throw DaemonFailed(message: "GET \(path): \(s) \(String(decoding: d, as: UTF8.self))")
        }
        return o
    }
}

/// A TCP socket bound to a loopback port the kernel picks, and that port; nil if it could not
/// be made. The caller closes it (to use the port) or listens on it (to hold the port).
func boundLoopbackSocket() -> (fd: Int32, port: Int)? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &a) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0
        }
    }
    guard ok else {
        close(fd)
        return nil
    }
    return (fd, Int(UInt16(bigEndian: a.sin_port)))
}

/// Runs `executable` to completion: its exit status and its standard output and error together.
/// One still running after `seconds` (a daemon that should have refused to start, say) is
/// killed with SIGKILL and reported so in the output, rather than holding the test run.
func runProgram(
    _ executable: String, _ args: [String], environment: [String: String]? = nil, in directory: String? = nil,
    seconds: TimeInterval = 600
) throws -> (Int32, String) {
    let p = ChildProcess()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    if let environment { p.environment = environment }
    if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let killed = NSLock()
    nonisolated(unsafe) var wasKilled = false
    let timer = DispatchWorkItem {
        killed.withLock {
            guard p.isRunning else { return }
            wasKilled = true
            kill(p.processIdentifier, SIGKILL)
        }
    }
    DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: timer)
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    timer.cancel()
    let note = killed.withLock { wasKilled } ? "\n(killed after \(Int(seconds)) s: it had not exited)" : ""
    return (p.terminationStatus, text + note)
}

/// `runProgram` on a thread of its own, for async tests: a minute of another language's test
/// suite on one of the cooperative pool's two threads stalls every other async test with it.
func runProgramOffPool(
    _ executable: String, _ args: [String], environment: [String: String]? = nil, in directory: String? = nil
) async throws -> (Int32, String) {
    try await withCheckedThrowingContinuation { c in
        Thread.detachNewThread {
            c.resume(with: Result { try runProgram(executable, args, environment: environment, in: directory) })
        }
    }
}

/// A child's output read until `done` holds for what was read (true), or the child closes
/// it or `seconds` pass (false). Tests wait this way for the lines servers print when ready.
func readOutput(_ h: FileHandle, seconds: TimeInterval = 30, until done: (String) -> Bool) -> (String, Bool) {
    var text = ""
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        let d = h.availableData
        if d.isEmpty { break }
        text += String(decoding: d, as: UTF8.self)
        if done(text) { return (text, true) }
    }
    return (text, false)
}

struct DaemonFailed: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A valid event for `org`.
func event(
    org: String, i: Int, key: String? = nil, category: String = "access", outcome: String = "success",
    extra: String = ""
) -> String {
    #"{"org":"\#(org)","category":"\#(category)","action":"access.granted","actor":{"type":"human","id":"usr_\#(i % 9)"},"target":{"type":"project","id":"p\#(i)"},"outcome":"\#(outcome)","source":{"service":"svc"},"occurred_at":"2025-03-01T00:00:00.000Z""#
        + (key.map { #","idempotency_key":"\#($0)""# } ?? "") + #","metadata":{"i":\#(i)\#(extra)}}"#
}
