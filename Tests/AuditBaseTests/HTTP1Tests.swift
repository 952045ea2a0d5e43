import AuditBase
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `HTTP1Parser` takes a hostile peer's lengths without trapping, and gives the same answer
/// however the bytes are split.
@Suite struct HTTP1ParserTests {
    static func answer(_ head: String, _ body: String = "") -> ArraySlice<UInt8> {
        Array((head + "\r\n\r\n" + body).utf8)[...]
    }

    static func parse(_ bytes: ArraySlice<UInt8>, maxBody: Int = 1 << 20) throws -> (HTTP1Answer, Bool)? {
        var p = HTTP1Parser(maxHead: 4096, maxBody: maxBody)
        return try p.feed(bytes, ended: true)
    }

    @Test(arguments: ["9223372036854775807", "9223372036854775800", "-5", "18446744073709551616", "2000000", "x"])
    func aContentLengthThatIsNotOneOrTooLargeIsRefused(_ length: String) {
        #expect(throws: AuditError.self) {
            _ = try Self.parse(Self.answer("HTTP/1.1 200 OK\r\nContent-Length: \(length)", "short"))
        }
    }

    @Test func anAnswerShortOfItsLengthWaitsThenFailsAtTheEnd() throws {
        var p = HTTP1Parser(maxHead: 4096, maxBody: 100)
        #expect(try p.feed(Self.answer("HTTP/1.1 200 OK\r\nContent-Length: 12", "short"), ended: false) == nil)
        #expect(throws: AuditError.self) { _ = try p.feed([], ended: true) }
    }

    @Test func aContentLengthThatFitsEndsTheAnswerAndBytesBeyondItCloseTheConnection() throws {
        let whole = try #require(try Self.parse(Self.answer("HTTP/1.1 200 OK\r\nContent-Length: 5", "hello")))
        #expect(whole.0.status == 200 && whole.0.body == Array("hello".utf8) && whole.1)
        let more = try #require(try Self.parse(Self.answer("HTTP/1.1 200 OK\r\nContent-Length: 5", "hello and more")))
        #expect(more.0.body == Array("hello".utf8) && !more.1)
        let close = try #require(
            try Self.parse(Self.answer("HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 0")))
        #expect(close.0.status == 201 && !close.1)
    }

    @Test(arguments: [
        "7fffffffffffffff\r\nabc\r\n0\r\n\r\n", "-3\r\nabc\r\n0\r\n\r\n", "ffffffffffffffffff\r\nx\r\n", "\r\nabc\r\n",
        "100001\r\nabc\r\n",
    ])
    func aHostileChunkSizeIsRefused(_ body: String) {
        #expect(throws: AuditError.self) {
            _ = try Self.parse(Self.answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", body), maxBody: 1 << 20)
        }
    }

    @Test func chunksAreJoinedHoweverTheBytesArrive() throws {
        let bytes = Self.answer(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nx-a: 2",
            "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: t\r\n\r\n")
        // Fed one byte at a time, and whole.
        var p = HTTP1Parser(maxHead: 4096, maxBody: 100)
        var got: (HTTP1Answer, Bool)?
        for (i, b) in bytes.enumerated() {
            got = try p.feed([b], ended: false)
            #expect((got == nil) == (i < bytes.count - 1), "whole after byte \(i) of \(bytes.count)")
        }
        let a = try #require(got)
        #expect(a.0.status == 200 && a.0.body == Array("abcde".utf8) && a.0.headers["x-a"] == "1, 2" && a.1)
        #expect(try Self.parse(bytes)?.0.body == Array("abcde".utf8))
    }

    /// A body is held once: a chunked one of 1 MiB fed in 4 KiB pieces never leaves more than a
    /// chunk and a piece in the read buffer beside it; both forms arrive whole.
    @Test func aBodyIsHeldOnceWhileItArrives() throws {
        let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var chunked = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        for start in stride(from: 0, to: payload.count, by: 10_000) {
            let piece = payload[start..<min(payload.count, start + 10_000)]
            chunked += Array(String(piece.count, radix: 16).utf8) + [13, 10] + piece + [13, 10]
        }
        chunked += Array("0\r\n\r\n".utf8)
        let lengthed = Array("HTTP/1.1 200 OK\r\nContent-Length: \(payload.count)\r\n\r\n".utf8) + payload
        for bytes in [chunked, lengthed] {
            var p = HTTP1Parser(maxHead: 4096, maxBody: 2 << 20)
            var most = 0
            var got: (HTTP1Answer, Bool)?
            for start in stride(from: 0, to: bytes.count, by: 4096) {
                got = try p.feed(bytes[start..<min(bytes.count, start + 4096)], ended: false)
                if got == nil { most = max(most, p.buffered) }
            }
            let a = try #require(got)
            #expect(a.0.body == payload && a.1)
            #expect(p.buffered == 0)
            // Chunked: at most a chunk and a piece wait beside the body. (By length the body is
            // the read buffer itself, moved out of it at the end.)
            if bytes == chunked { #expect(most <= 10_000 + 4096 + 16, "\(most) bytes waited beside the body") }
        }
    }

    @Test func anOverLongHeadOrANonHTTPAnswerIsRefused() {
        #expect(throws: AuditError.self) {
            _ = try Self.parse(Self.answer("HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 5000)))
        }
        var p = HTTP1Parser(maxHead: 4096, maxBody: 100)
        // Refused as soon as the head passes the bound, not at its end.
        #expect(throws: AuditError.self) { _ = try p.feed(Array(repeating: 0x61, count: 5000)[...], ended: false) }
        #expect(throws: AuditError.self) { _ = try Self.parse(Self.answer("SSH-2.0-OpenSSH 200 x")) }
        #expect(throws: AuditError.self) { _ = try Self.parse(Self.answer("HTTP/1.1 9999 x")) }
    }
}

/// `HTTP1Client` against a scripted server on loopback: it keeps connections, replaces one the
/// server closed, and a server that trickles or floods costs only its own request.
@Suite(.serialized) struct HTTP1ClientTests {
    /// A TCP server on 127.0.0.1 that answers each request on a connection with `reply(n)`,
    /// the n-th request overall; `closeAfter` closes each connection after so many answers.
    /// Each descriptor is closed once, by the thread that uses it (a reply ends an answer with
    /// `shutdown`, `stop` shuts the listener down): a second close could close another test's
    /// socket that took the same number.
    final class Server: @unchecked Sendable {
        let fd: Int32
        let port: Int
        let accepted = Locked(0)
        let requests = Locked(0)

        init(closeAfter: Int = .max, reply: @escaping @Sendable (Int, Int32) -> Void) throws {
            let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var one: Int32 = 1
            setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            a.sin_port = 0
            let size = socklen_t(MemoryLayout<sockaddr_in>.size)
            try withUnsafePointer(to: &a) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    guard bind(listener, $0, size) == 0, listen(listener, 16) == 0 else {
                        throw AuditError("cannot listen")
                    }
                }
            }
            var bound = sockaddr_in()
            var len = size
            withUnsafeMutablePointer(to: &bound) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(listener, $0, &len) }
            }
            fd = listener
            port = Int(UInt16(bigEndian: bound.sin_port))
            let (accepted, requests) = (accepted, requests)
            Thread.detachNewThread {
                while true {
                    let c = accept(listener, nil, nil)
                    guard c >= 0 else {
                        close(listener)
                        return
                    }
                    accepted.mutate { $0 += 1 }
                    Thread.detachNewThread {
                        var buf = [UInt8](repeating: 0, count: 65536)
                        var pending: [UInt8] = []
                        var answered = 0
                        while answered < closeAfter {
                            // One request: a head and its Content-Length of body.
                            while true {
                                if let end = HTTP1Parser.blankLine(pending, from: 0) {
                                    let head = String(decoding: pending[..<end], as: UTF8.self).lowercased()
                                    let cl =
                                        head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                                        .flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
                                    if pending.count >= end + 4 + cl {
                                        pending.removeFirst(end + 4 + cl)
                                        break
                                    }
                                }
                                let n = recv(c, &buf, buf.count, 0)
                                if n <= 0 {
                                    close(c)
                                    return
                                }
                                pending += buf[..<n]
                            }
                            var k = 0
                            requests.mutate {
                                $0 += 1
                                k = $0
                            }
                            reply(k, c)
                            answered += 1
                        }
                        close(c)
                    }
                }
            }
        }

        func stop() {
            shutdown(fd, Int32(SHUT_RDWR))
        }

        static func write(_ c: Int32, _ s: String) {
            let b = Array(s.utf8)
            _ = b.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }

    static func ok(_ body: String) -> String { "HTTP/1.1 200 OK\r\nContent-Length: \(body.count)\r\n\r\n\(body)" }

    @Test func connectionsAreKeptAndOneTheServerClosedIsReplaced() throws {
        let s = try Server(closeAfter: 3) { n, c in Server.write(c, Self.ok("answer \(n)")) }
        defer { s.stop() }
        let client = HTTP1Client(host: "127.0.0.1", port: s.port, maxBody: 1000)
        for n in 1...7 {
            let a = try client.perform(
                "PUT", "/k/\(n)", headers: [("x-test", "1")], body: Array("body \(n)".utf8),
                deadline: .now + .seconds(60))
            #expect(a.status == 200 && a.body == Array("answer \(n)".utf8))
        }
        // Three requests a connection: seven need three connections, not seven.
        #expect(s.accepted.value == 3)
    }

    @Test func aTricklingOrFloodingServerCostsOnlyItsOwnRequest() throws {
        let trickle = try Server { _, c in
            Server.write(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            for _ in 0..<100 {
                Server.write(c, "a")
                usleep(300_000)
            }
        }
        defer { trickle.stop() }
        let started = ContinuousClock.now
        #expect(throws: AuditError.self) {
            _ = try HTTP1Client(host: "127.0.0.1", port: trickle.port, maxBody: 1000).perform(
                "GET", "/", deadline: .now + .milliseconds(500))
        }
        let took = ContinuousClock.now - started
        #expect(took < .seconds(15), "a trickle held the request \(took)")

        let flood = try Server { _, c in
            Server.write(c, "HTTP/1.1 200 OK\r\n\r\n")
            let mb = String(repeating: "x", count: 1 << 20)
            for _ in 0..<8 { Server.write(c, mb) }
            // The end of the answer; the connection thread closes the socket, once.
            shutdown(c, Int32(SHUT_WR))
        }
        defer { flood.stop() }
        do {
            _ = try HTTP1Client(host: "127.0.0.1", port: flood.port, maxBody: 1 << 20).perform(
                "GET", "/", deadline: .now + .seconds(60))
            Issue.record("an answer beyond the bound was taken")
        } catch let e as AuditError {
            #expect(e.message.contains("larger than"), "\(e)")
        }

        // Cancelled: the request ends within a poll slice.
        let cancelAt = ContinuousClock.now + .milliseconds(200)
        #expect(throws: AuditError.self) {
            _ = try HTTP1Client(host: "127.0.0.1", port: trickle.port, maxBody: 1000).perform(
                "GET", "/", deadline: .now + .seconds(30), cancelled: { ContinuousClock.now > cancelAt })
        }
    }

    @Test func aClosedPortIsAClearError() throws {
        let s = try Server { _, _ in }
        let port = s.port
        s.stop()
        do {
            _ = try HTTP1Client(host: "127.0.0.1", port: port, maxBody: 10).perform(
                "GET", "/", deadline: .now + .seconds(60))
            Issue.record("a closed port answered")
        } catch let e as AuditError {
            #expect(e.message.contains("cannot connect to 127.0.0.1:\(port)"), "\(e)")
        }
    }
}
