import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 POST over a plain TCP socket, every byte and every second counted: the
/// answer is read into a buffer of at most `limit` bytes and the whole exchange ends at
/// `deadline`, or as soon as `cancelled()` says so. For `http://` witnesses (a witness on the
/// same network, or behind a local bastion); nothing here follows redirects or keeps alive.
enum PlainHTTP {
    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    static func post(
        host: String, port: Int, path: String, body: [UInt8], limit: Int,
        deadline: ContinuousClock.Instant, cancelled: () -> Bool
    ) throws -> (Int, [UInt8]) {
        let fd = try connect(host: host, port: port, deadline: deadline, cancelled: cancelled)
        defer { close(fd) }
        let head =
            "POST \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Type: text/plain\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        try send(fd, Array(head.utf8) + body, deadline: deadline, cancelled: cancelled)
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            try wait(fd, for: Int16(POLLIN), deadline: deadline, cancelled: cancelled)
            let n = recv(fd, &chunk, chunk.count, 0)
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw Failed(description: "reading the answer: \(String(cString: strerror(errno)))")
            }
            answer += chunk[..<n]
            // The limit covers the head too: a line of headers is as hostile as a body.
            guard answer.count <= limit + 4096 else {
                throw Failed(description: "the answer is larger than \(limit) bytes")
            }
            if let done = complete(answer) { return try parse(Array(answer[..<done])) }
        }
        return try parse(answer)
    }

    private static func connect(
        host: String, port: Int, deadline: ContinuousClock.Instant, cancelled: () -> Bool
    ) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &res) == 0, let first = res else {
            throw Failed(description: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(res) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failed(description: "no socket: \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        if Glibc.connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
            let e = errno
            close(fd)
            throw Failed(description: "unreachable: \(String(cString: strerror(e)))")
        }
        do { try wait(fd, for: Int16(POLLOUT), deadline: deadline, cancelled: cancelled) } catch {
            close(fd)
            throw error
        }
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        guard err == 0 else {
            close(fd)
            throw Failed(description: "unreachable: \(String(cString: strerror(err)))")
        }
        return fd
    }

    private static func send(
        _ fd: Int32, _ bytes: [UInt8], deadline: ContinuousClock.Instant, cancelled: () -> Bool
    ) throws {
        var done = 0
        while done < bytes.count {
            try wait(fd, for: Int16(POLLOUT), deadline: deadline, cancelled: cancelled)
            let n = bytes[done...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw Failed(description: "sending the request: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    /// Waits until `fd` is ready for `events`, in slices of 100 ms so a cancellation is seen.
    private static func wait(
        _ fd: Int32, for events: Int16, deadline: ContinuousClock.Instant, cancelled: () -> Bool
    ) throws {
        while true {
            if cancelled() { throw Failed(description: "cancelled") }
            let left = deadline - .now
            guard left > .zero else { throw Failed(description: "no complete answer in time") }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let ms = Int32(
                min(100, max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)))
            let r = poll(&p, 1, ms)
            if r > 0 { return }
            if r < 0 && errno != EINTR { throw Failed(description: "poll: \(String(cString: strerror(errno)))") }
        }
    }

    /// The length of a whole answer at the start of `b` (with a Content-Length), else nil. The
    /// peer's length is compared with the bytes present, never added to an offset unchecked.
    static func complete(_ b: [UInt8]) -> Int? {
        guard let end = headEnd(b) else { return nil }
        let head = String(decoding: b[..<end], as: UTF8.self).lowercased()
        guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
            let n = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        else { return nil }
        let have = b.count - (end + 4)
        return n >= 0 && n <= have ? end + 4 + n : nil
    }

    private static func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }

    private static func parse(_ b: [UInt8]) throws -> (Int, [UInt8]) {
        guard let end = headEnd(b) else { throw Failed(description: "the answer ended before its headers did") }
        let head = String(decoding: b[..<end], as: UTF8.self)
        let status = head.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        guard status > 0 else { throw Failed(description: "not an HTTP answer: \(head.prefix(80))") }
        var body = Array(b[(end + 4)...])
        if head.lowercased().contains("transfer-encoding: chunked") { body = try dechunk(body) }
        return (status, body)
    }

    static func dechunk(_ b: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < b.count {
            guard let nl = b[i...].firstIndex(of: 10),
                let size = Int(
                    String(decoding: b[i..<nl], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).split(
                        separator: ";"
                    ).first ?? "", radix: 16)
            else {
                throw Failed(description: "a malformed chunked answer")
            }
            if size == 0 { return out }
            guard size >= 0, size <= b.count - (nl + 1) else {
                throw Failed(description: "a chunked answer cut short, or a chunk size that is not one")
            }
            out += b[(nl + 1)..<(nl + 1 + size)]
            i = nl + 1 + size + 2
        }
        return out
    }
}
