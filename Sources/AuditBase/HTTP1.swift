import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An answer read by `HTTP1Client`.
public struct HTTP1Answer: Sendable {
    public var status: Int
    /// Header names lower-cased; a repeated header's values joined with ", ".
    public var headers: [String: String]
    public var body: [UInt8]
}

/// HTTP/1.1 over plain TCP, on the calling thread, every byte and every second counted: for
/// `http://` peers (an object-store gateway or a witness on loopback or the same network).
/// Each wait is a `poll` that ends at the request's deadline, or within 100 ms of `cancelled()`
/// saying so; an answer's head is at most `maxHead` bytes and its body at most `maxBody`, and a
/// peer's lengths are compared with those bounds before anything is added to them. Up to
/// `maxIdle` connections are kept between requests (0: every request closes its own).
///
/// Why not URLSession: on Linux it runs each request through libcurl's multi handle, its own
/// dispatch queue and a delegate queue, three thread hops a request, which on a loaded 2-core
/// machine cost more than a gateway's whole work for a small PUT; and its timeout is an idle
/// timeout that a trickle never trips. `https://` peers still go through URLSession.
public final class HTTP1Client: @unchecked Sendable {
    public let host: String
    public let port: Int
    public let maxHead: Int
    public let maxBody: Int
    public let maxIdle: Int
    private let lock = NSLock()
    private var idle: [Int32] = []

    public init(host: String, port: Int, maxBody: Int, maxHead: Int = 64 << 10, maxIdle: Int = 8) {
        self.host = host
        self.port = port
        self.maxBody = maxBody
        self.maxHead = maxHead
        self.maxIdle = maxIdle
    }

    deinit {
        for fd in idle { close(fd) }
    }

    /// Sends `method target` with `headers` (a `Host` header is added unless given) and `body`,
    /// and reads the answer. A kept connection the peer closed meanwhile is replaced once.
    public func perform(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = [],
        deadline: ContinuousClock.Instant, cancelled: () -> Bool = { false }
    ) throws -> HTTP1Answer {
        var head = "\(method) \(target) HTTP/1.1\r\n"
        var hasHost = false
        for (k, v) in headers {
            guard !(k + v).contains(where: { $0 == "\r" || $0 == "\n" }) else {
                throw AuditError(.invalidArgument, "HTTP header \(k) holds a line break")
            }
            hasHost = hasHost || k.lowercased() == "host"
            head += "\(k): \(v)\r\n"
        }
        if !hasHost { head += "Host: \(host):\(port)\r\n" }
        if !body.isEmpty || method == "PUT" || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        let request = Array(head.utf8) + body
        return try withoutActuallyEscaping(cancelled) { cancelled in
            try send(request, method: method, Link(name: host, port: port, deadline: deadline, cancelled: cancelled))
        }
    }

    private func send(_ request: [UInt8], method: String, _ link: Link) throws -> HTTP1Answer {
        if let fd = lock.withLock({ idle.popLast() }) {
            do {
                return try exchange(fd, request, method: method, link)
            } catch is Stale {
                // The peer closed the kept connection before answering: once more, anew.
            }
        }
        let fd = try link.connect()
        do {
            return try exchange(fd, request, method: method, link)
        } catch is Stale {
            throw AuditError(.io, "\(link.host) closed the connection without answering")
        }
    }

    /// Writes `request` on `fd` and reads the answer; then keeps `fd` or closes it.
    private func exchange(_ fd: Int32, _ request: [UInt8], method: String, _ link: Link) throws -> HTTP1Answer {
        do {
            try link.write(fd, request)
            var parser = HTTP1Parser(maxHead: maxHead, maxBody: maxBody, headOnly: method == "HEAD")
            var got = 0
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let n = try link.read(fd, into: &chunk)
                if n == 0 && got == 0 { throw Stale() }
                got += n
                guard let (answer, keep) = try parser.feed(chunk[..<n], ended: n == 0) else {
                    if n == 0 { throw AuditError(.io, "\(link.host) ended its answer early") }
                    continue
                }
                let kept =
                    keep
                    && lock.withLock {
                        guard idle.count < maxIdle else { return false }
                        idle.append(fd)
                        return true
                    }
                if !kept { close(fd) }
                return answer
            }
        } catch {
            close(fd)
            throw error
        }
    }
}

/// A kept connection the peer closed before any byte of the answer arrived.
private struct Stale: Error {}

/// The deadline and cancellation of one request, and the socket calls that honour them.
private struct Link {
    let name: String
    let port: Int
    let deadline: ContinuousClock.Instant
    let cancelled: () -> Bool
    var host: String { "\(name):\(port)" }

    func failure(_ what: String, _ code: Int32 = errno) -> AuditError {
        AuditError(.io, "\(what) \(host): \(String(cString: strerror(code)))")
    }

    /// Waits until `fd` is ready for `events`, in slices of at most 100 ms.
    func wait(_ fd: Int32, _ events: Int16) throws {
        while true {
            if cancelled() { throw AuditError("the request to \(host) was cancelled") }
            let left = deadline - .now
            guard left > .zero else { throw AuditError(.io, "\(host) gave no complete answer in time") }
            let ms = min(100, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
            var p = pollfd(fd: fd, events: events, revents: 0)
            let r = poll(&p, 1, Int32(ms))
            if r > 0 { return }
            if r < 0 && errno != EINTR { throw failure("waiting for") }
        }
    }

    /// A non-blocking connection without Nagle's delay, to the first address that answers.
    func connect() throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(name, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw AuditError(.io, "cannot resolve \(name): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(first) }
        var last = "no address"
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let a = next {
            next = a.pointee.ai_next
            let fd = socket(
                a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue),
                a.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 || errno == EINPROGRESS {
                do {
                    try wait(fd, Int16(POLLOUT))
                    var err: Int32 = 0
                    var len = socklen_t(MemoryLayout<Int32>.size)
                    _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
                    if err == 0 { return fd }
                    last = String(cString: strerror(err))
                } catch {
                    close(fd)
                    throw error
                }
            } else {
                last = String(cString: strerror(errno))
            }
            close(fd)
        }
        throw AuditError(.io, "cannot connect to \(host): \(last)")
    }

    func write(_ fd: Int32, _ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            try wait(fd, Int16(POLLOUT))
            let n = bytes[done...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                // A kept connection the peer closed: nothing of the answer was read.
                if errno == EPIPE || errno == ECONNRESET { throw Stale() }
                throw failure("writing to")
            }
            done += n
        }
    }

    /// Bytes into `buffer`; 0 at the end of the stream (a reset before any answer counts too).
    func read(_ fd: Int32, into buffer: inout [UInt8]) throws -> Int {
        while true {
            try wait(fd, Int16(POLLIN))
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n >= 0 { return n }
            if errno == EINTR || errno == EAGAIN { continue }
            if errno == ECONNRESET { return 0 }
            throw failure("reading from")
        }
    }
}

/// One HTTP/1.1 answer, parsed from the bytes as they arrive: a head of at most `maxHead`
/// bytes, then a body by `Content-Length`, by chunks, or to the end of the stream, of at most
/// `maxBody` bytes. A peer's numbers are checked against the bounds before any arithmetic.
public struct HTTP1Parser {
    let maxHead: Int
    let maxBody: Int
    let headOnly: Bool
    private var buffer: [UInt8] = []
    private var at = 0
    private var status = 0
    private var headers: [String: String] = [:]
    private var headDone = false
    private var body: [UInt8] = []
    private var keepAlive = true

    public init(maxHead: Int, maxBody: Int, headOnly: Bool = false) {
        self.maxHead = maxHead
        self.maxBody = maxBody
        self.headOnly = headOnly
    }

    /// Bytes in the read buffer, parsed or not: the body's bytes are held in the body, and
    /// parsed ones leave the buffer, so this stays near one read's worth.
    public var buffered: Int { buffer.count }

    static func failed(_ why: String) -> AuditError { AuditError(.io, "an HTTP answer \(why)") }

    /// Adds `bytes` (`ended`: the stream ended after them); the answer once it is whole, with
    /// whether the connection may carry another request. Interim (1xx) answers are skipped.
    public mutating func feed(_ bytes: ArraySlice<UInt8>, ended: Bool) throws -> (HTTP1Answer, Bool)? {
        buffer += bytes
        while true {
            if !headDone {
                guard try parseHead(ended: ended) else { return nil }
                if (100..<200).contains(status) {
                    // An interim answer: the real one follows.
                    headDone = false
                    headers = [:]
                    continue
                }
            }
            guard let done = try parseBody(ended: ended) else { return nil }
            return done
        }
    }

    /// The head, once its blank line has arrived.
    private mutating func parseHead(ended: Bool) throws -> Bool {
        guard let end = Self.blankLine(buffer, from: at) else {
            guard buffer.count - at <= maxHead else { throw Self.failed("head is longer than \(maxHead) bytes") }
            if ended { throw Self.failed("ended before its head did") }
            return false
        }
        guard end - at <= maxHead else { throw Self.failed("head is longer than \(maxHead) bytes") }
        let lines = String(decoding: buffer[at..<end], as: UTF8.self).split(separator: "\r\n")
        at = end + 4
        let first = lines.first.map(String.init) ?? ""
        let parts = first.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3, let s = Int(parts[1]),
            (100..<600).contains(s)
        else { throw Self.failed("is not HTTP/1.x: \(first.prefix(80))") }
        status = s
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name] = headers[name].map { $0 + ", " + value } ?? value
        }
        keepAlive = parts[0] == "HTTP/1.1" && headers["connection"]?.lowercased() != "close"
        headDone = true
        return true
    }

    /// The body, once it is all here; nil while more is to come.
    private mutating func parseBody(ended: Bool) throws -> (HTTP1Answer, Bool)? {
        if headOnly || status == 204 || status == 304 {
            return finish()
        }
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while true {
                guard let nl = buffer[at...].firstIndex(of: 0x0A) else {
                    guard buffer.count - at <= 1024 else { throw Self.failed("has an over-long chunk size line") }
                    if ended { throw Self.failed("ended inside its chunks") }
                    compact()
                    return nil
                }
                let line = String(decoding: buffer[at..<nl], as: UTF8.self)
                let hex = line.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                guard let hex, (1...15).contains(hex.count), let n = Int(hex, radix: 16), n >= 0 else {
                    throw Self.failed("has a chunk size that is not one: \(line.prefix(40))")
                }
                if n == 0 {
                    // The trailers end at a blank line.
                    guard let end = Self.blankLine(buffer, from: nl - 1 >= at ? nl - 1 : at) else {
                        if ended { throw Self.failed("ended inside its trailers") }
                        guard buffer.count - nl <= maxHead else { throw Self.failed("has over-long trailers") }
                        return nil
                    }
                    at = end + 4
                    return finish()
                }
                guard n <= maxBody - body.count else { throw Self.failed("is larger than \(maxBody) bytes") }
                // The chunk, then its CRLF.
                guard buffer.count - (nl + 1) >= n + 2 else {
                    if ended { throw Self.failed("ended inside a chunk") }
                    compact()
                    return nil
                }
                body += buffer[(nl + 1)..<(nl + 1 + n)]
                at = nl + 1 + n + 2
            }
        }
        if let cl = headers["content-length"] {
            guard cl.count <= 19, let n = Int(cl), n >= 0, n <= maxBody else {
                throw Self.failed("has a Content-Length that is not one or is larger than \(maxBody): \(cl.prefix(24))")
            }
            guard buffer.count - at >= n else {
                if ended { throw Self.failed("ended \(n - (buffer.count - at)) bytes short of its Content-Length") }
                return nil
            }
            takeBody(n)
            return finish()
        }
        // To the end of the stream.
        guard buffer.count - at <= maxBody else { throw Self.failed("is larger than \(maxBody) bytes") }
        guard ended else { return nil }
        takeBody(buffer.count - at)
        keepAlive = false
        return finish()
    }

    /// The `n` bytes at `at` become the body: moved out of the buffer when they end it (the
    /// usual case, no copy), copied when more follows them.
    private mutating func takeBody(_ n: Int) {
        if at + n == buffer.count {
            buffer.removeSubrange(0..<at)
            body = buffer
            buffer = []
            at = 0
            // Nothing beyond the body: `finish` compares `at` with the buffer's end.
        } else {
            body = Array(buffer[at..<(at + n)])
            at += n
        }
    }

    /// Drops the bytes already parsed, so that a chunked body is not held twice while it grows.
    private mutating func compact() {
        guard at > 0 else { return }
        buffer.removeSubrange(0..<at)
        at = 0
    }

    private mutating func finish() -> (HTTP1Answer, Bool) {
        // Bytes beyond the answer: not a connection to send another request on.
        let keep = keepAlive && at == buffer.count
        compact()
        return (HTTP1Answer(status: status, headers: headers, body: body), keep)
    }

    /// The offset of the first CRLFCRLF at or after `from`.
    public static func blankLine(_ b: [UInt8], from: Int) -> Int? {
        guard b.count >= 4, from <= b.count - 4 else { return nil }
        for i in from...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 {
            return i
        }
        return nil
    }
}
