import Foundation
import TestSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Headless Chromium driven through chromedriver's W3C WebDriver endpoint on loopback (Debian's
/// `chromium` and `chromium-driver`, installed by `.ci/run` and `scripts/setup`).
final class WebDriver: @unchecked Sendable {
    static let driver = "/usr/bin/chromedriver"
    static let browser = "/usr/bin/chromium"
    let process: ChildProcess
    let base: String
    let session: String
    /// chromedriver's and Chromium's TMPDIR (their profile and scratch directories), removed at
    /// `quit`: left in /tmp, a full test run added a few hundred directories.
    let scratch: String

    struct Failed: Error, CustomStringConvertible { var description: String }

    /// A browser; with `timeZone` (an IANA name), Chromium runs in that zone.
    init(timeZone: String? = nil) async throws {
        for path in [Self.driver, Self.browser] where !FileManager.default.isExecutableFile(atPath: path) {
            throw Failed(
                description:
                    "\(path) is missing: the console's browser test needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver; .ci/run and scripts/setup install them)"
            )
        }
        let port = Self.freePort()
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: Self.driver)
        p.arguments = ["--port=\(port)"]
        let scratch = NSTemporaryDirectory() + "webdriver-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        self.scratch = scratch
        var env = ProcessInfo.processInfo.environment
        env["TMPDIR"] = scratch
        if let timeZone { env["TZ"] = timeZone }
        p.environment = env
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        process = p
        base = "http://127.0.0.1:\(port)"
        var ready = false
        var last = ""
        // Up to 30 s: chromedriver starts slowly on a loaded 2-core machine.
        for _ in 0..<300 where !ready {
            try await Task.sleep(for: .milliseconds(100))
            do { ready = try await Self.call(base, "GET", "/status")["ready"] as? Bool == true } catch {
                last = "\(error)"
            }
        }
        guard ready else {
            Self.stop(p)
            try? FileManager.default.removeItem(atPath: scratch)
            throw Failed(description: "chromedriver did not start on port \(port): \(last)")
        }
        // As root (CI), Chromium runs only without its sandbox.
        let options: [String: Any] = [
            "binary": Self.browser,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
            ],
        ]
        let caps: [String: Any] = [
            "capabilities": ["alwaysMatch": ["browserName": "chrome", "goog:chromeOptions": options]]
        ]
        do {
            let v = try await Self.call(base, "POST", "/session", caps)
            guard let id = v["sessionId"] as? String else {
                throw Failed(description: "chromedriver gave no session: \(v)")
            }
            session = id
        } catch {
            Self.stop(p)
            try? FileManager.default.removeItem(atPath: scratch)
            throw error
        }
    }

    /// A loopback port nothing listens on now (the kernel's pick), for chromedriver; a random
    /// one could be taken, and chromedriver would then never answer.
    static func freePort() -> Int {
        guard let (fd, port) = boundLoopbackSocket() else { return 20_000 + Int.random(in: 0..<20_000) }
        close(fd)
        return port
    }

    /// Runs `body` with a browser (in `timeZone`, if given), and quits it whatever happens.
    static func with(timeZone: String? = nil, _ body: (WebDriver) async throws -> Void) async throws {
        let browser = try await WebDriver(timeZone: timeZone)
        do { try await body(browser) } catch {
            await browser.quit()
            throw error
        }
        await browser.quit()
    }

    /// Opens the console at `url` and signs in with `token`, pasting `key` as the log's key.
    func signIn(at url: String, token: String, key: String) async throws {
        try await open(url)
        try await type("#token", token)
        try await type("#pin", key)
        try await click("#signin-form button")
    }

    func quit() async {
        _ = try? await Self.call(base, "DELETE", "/session/\(session)")
        Self.stop(process)
        try? FileManager.default.removeItem(atPath: scratch)
    }

    /// SIGKILL: children of the test runner inherit its blocked SIGTERM.
    static func stop(_ p: ChildProcess) {
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    /// chromedriver writes header lines without a space after the colon, which
    /// FoundationNetworking refuses; so its requests go over a plain loopback socket.
    @discardableResult
    static func call(
        _ base: String, _ method: String, _ path: String, _ body: [String: Any]? = nil
    ) async throws -> [String: Any] {
        guard let port = Int(base.split(separator: ":").last ?? "") else {
            throw Failed(description: "bad base \(base)")
        }
        let payload = try body.map { try JSONSerialization.data(withJSONObject: $0) } ?? Data()
        let (status, d) = try await withCheckedThrowingContinuation { (c: CheckedContinuation<(Int, Data), Error>) in
            Thread {
                c.resume(with: Result { try loopbackHTTP(port: port, method: method, path: path, body: payload) })
            }.start()
        }
        let o = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any] ?? [:]
        guard status == 200 else {
            throw Failed(
                description: "WebDriver \(method) \(path): \(status) \(String(decoding: d, as: UTF8.self).prefix(500))")
        }
        if let v = o["value"] as? [String: Any] { return v }
        return ["value": o["value"] ?? NSNull()]
    }

    @discardableResult
    func call(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> [String: Any] {
        try await Self.call(base, method, "/session/\(session)" + path, body)
    }

    func open(_ url: String) async throws { try await call("POST", "/url", ["url": url]) }

    @discardableResult
    /// Runs `script` (a function body) in the page and returns what it returns.
    func run(_ script: String, _ args: [Any] = []) async throws -> Any? {
        try await call("POST", "/execute/sync", ["script": script, "args": args])["value"]
    }

    func element(_ css: String) async throws -> String {
        let v = try await call("POST", "/element", ["using": "css selector", "value": css])
        guard let id = v.values.first as? String else { throw Failed(description: "no element \(css)") }
        return id
    }

    func type(_ css: String, _ text: String) async throws {
        let id = try await element(css)
        try await call("POST", "/element/\(id)/clear", [:])
        try await call("POST", "/element/\(id)/value", ["text": text])
    }

    func click(_ css: String) async throws {
        try await call("POST", "/element/\(try await element(css))/click", [:])
    }

    /// Presses `keys` (WebDriver key codes: "\u{E007}" Enter, "\u{E00C}" Escape, "\u{E015}" down)
    /// on whatever has the focus, as a person at the keyboard would.
    func press(_ keys: String...) async throws {
        let strokes = keys.flatMap { [["type": "keyDown", "value": $0], ["type": "keyUp", "value": $0]] }
        try await call("POST", "/actions", ["actions": [["type": "key", "id": "keyboard", "actions": strokes]]])
        try await call("DELETE", "/actions")
    }

    /// The window's size in CSS pixels (a phone's width, for instance).
    func resize(width: Int, height: Int) async throws {
        try await call("POST", "/window/rect", ["width": width, "height": height])
    }

    /// A Chrome DevTools Protocol command, through chromedriver (emulated media, permissions,
    /// downloads).
    @discardableResult
    func devtools(_ command: String, _ params: [String: Any] = [:]) async throws -> [String: Any] {
        try await call("POST", "/goog/cdp/execute", ["cmd": command, "params": params])
    }

    /// Polls `script` until it returns true, or fails after `seconds` with what the page shows.
    func wait(_ what: String, seconds: Double = 20, _ script: String) async throws {
        if try await eventually(seconds: seconds, { (try await run(script)) as? Bool == true ? true : nil }) != nil {
            return
        }
        let shown = (try? await run("return document.body.innerText.slice(0, 1500)")) as? String ?? ""
        throw Failed(description: "waited \(seconds) s for \(what); the page shows:\n\(shown)")
    }

    func screenshot(to path: String) async throws {
        let v = try await call("GET", "/screenshot")
        guard let b = v["value"] as? String, let d = Data(base64Encoded: b) else {
            throw Failed(description: "no screenshot")
        }
        try d.write(to: URL(fileURLWithPath: path))
    }
}

/// One HTTP/1.1 request on 127.0.0.1:`port` with `Connection: close`: the status and the body.
func loopbackHTTP(port: Int, method: String, path: String, body: Data) throws -> (Int, Data) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw WebDriver.Failed(description: "socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let r = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard r == 0 else {
        throw WebDriver.Failed(description: "connect 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
    }
    var tv = timeval(tv_sec: 120, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var request = Array(
        "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
            .utf8)
    request += body
    var sent = 0
    while sent < request.count {
        let n = request.withUnsafeBytes {
            send(fd, $0.baseAddress.map { $0 + sent }, request.count - sent, Int32(MSG_NOSIGNAL))
        }
        guard n > 0 else { throw WebDriver.Failed(description: "send to 127.0.0.1:\(port) failed") }
        sent += n
    }
    // chromedriver keeps the connection open: the answer ends at its Content-Length.
    var answer: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    let sep: [UInt8] = [13, 10, 13, 10]
    var headEnd: Int?
    var length: Int?
    while true {
        if headEnd == nil, let end = (0..<max(0, answer.count - 3)).first(where: { Array(answer[$0..<$0 + 4]) == sep })
        {
            headEnd = end
            let head = String(decoding: answer[..<end], as: UTF8.self).lowercased()
            length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }
        }
        if let headEnd, let length, answer.count >= headEnd + 4 + length { break }
        let n = read(fd, &chunk, chunk.count)
        if n < 0 {
            throw WebDriver.Failed(description: "read from 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
        if n == 0 { break }
        answer += chunk[0..<n]
    }
    guard let end = headEnd else { throw WebDriver.Failed(description: "no HTTP answer from 127.0.0.1:\(port)") }
    let head = String(decoding: answer[..<end], as: UTF8.self)
    let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    return (status, Data(answer[(end + 4)...]))
}
