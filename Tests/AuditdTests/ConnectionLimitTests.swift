import AuditWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 7 B8: no peer behaviour takes the daemon past its memory bound: many connections
/// holding partial frames, a flood of bad frames whose replies are never read, idle and
/// stalled peers.
@Suite(.serialized) struct ConnectionLimitTests {
    func rssMiB(_ d: Daemon) -> Int {
        guard let pid = d.process?.processIdentifier,
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return -1 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
    }

    /// A frame header claiming a 64 KiB body, and most of the body.
    static let partialFrame: [UInt8] = {
        let body = 65_000
        var b = [UInt8]()
        let len = UInt32(9 + body)
        for k in 0..<4 { b.append(UInt8(truncatingIfNeeded: len >> (8 * UInt32(k)))) }
        b.append(0x01)
        b += [UInt8](repeating: 7, count: 8)
        b += [UInt8](repeating: 0x20, count: body - 100)
        return b
    }()

    @Test func connectionsBeyondTheLimitAreRefusedAndPartialFramesStayBounded() throws {
        var lim = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
        lim.rlim_cur = min(lim.rlim_max, 8192)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
        let d = Daemon("conns", args: ["--max-connections", "300"])
        defer { d.cleanup() }
        try d.start()
        var held: [RawSocket] = []
        var refused = 0
        for _ in 0..<400 {
            let s = try RawSocket(path: d.socket)
            s.send(Self.partialFrame)
            held.append(s)
        }
        // Which 100 are refused is the daemon's order of setting connections up, spread over
        // its event loops, not the order they were opened in: with the CPU busy, 17 of the 100
        // refusals fell among the first 300 opened (and a full test run once counted 88 among
        // the last 100, failing). So every connection is watched until 100 have their refusal,
        // or a minute has passed.
        var pending = Array(held.indices)
        var silent = 0
        var refusedEarly = 0
        let deadline = Date().addingTimeInterval(60)
        while refused < 100 && !pending.isEmpty && Date() < deadline {
            var fds = pending.map { pollfd(fd: held[$0].fd, events: Int16(POLLIN), revents: 0) }
            guard poll(&fds, nfds_t(fds.count), 1000) > 0 else { continue }
            var still: [Int] = []
            for (k, p) in fds.enumerated() {
                guard p.revents != 0 else {
                    still.append(pending[k])
                    continue
                }
                if let f = held[pending[k]].next(), f.type == FrameType.error.rawValue,
                    case let e = WireError(body: f.body), e.code == WireErrorCode.unavailable.rawValue,
                    e.message.contains("max_connections")
                {
                    refused += 1
                    if pending[k] < 300 { refusedEarly += 1 }
                } else {
                    silent += 1
                }
            }
            pending = still
        }
        #expect(silent == 0, "\(silent) connections were closed without the refusal's reason")
        print("refused: \(refused) of 400 connections, \(refusedEarly) of them among the first 300 opened")
        #expect(refused == 100, "connections beyond max_connections get a clear refusal (\(refused) of 100)")
        let rss = rssMiB(d)
        print("RSS with 300 connections holding partial frames: \(rss) MiB")
        #expect(rss > 0 && rss < 256, "RSS \(rss) MiB with 300 connections holding partial frames")
        // The daemon still serves a writer once a place is free.
        // The daemon sees the 400 closes in its own time (a loaded CI machine once took more
        // than 300 ms): until then a new writer is refused with the same clear error.
        held.removeAll()
        var reply: UInt8?
        for _ in 0..<50 {
            let w = try RawSocket(path: d.socket)
            w.append(event(org: "org_a", i: 1, key: "after-the-flood"), id: 1)
            reply = w.next()?.type
            if reply != FrameType.error.rawValue { break }
            usleep(200_000)
        }
        #expect(reply == FrameType.ack.rawValue)
        #expect(d.stop() == 0)
    }

    @Test func aFloodOfBadFramesWhoseRepliesAreNeverReadIsCut() throws {
        let d = Daemon("flood")
        defer { d.cleanup() }
        try d.start()
        let s = try RawSocket(path: d.socket)
        // 20,000 tiny frames of an unknown type, replies never read.
        var flood = [UInt8]()
        for i in 0..<20_000 { flood += Frame(rawType: 0x7E, id: UInt64(i), body: []).encoded }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        s.send(flood)
        usleep(500_000)
        // The connection was closed after too many bad frames; the daemon is fine.
        var last: Frame?
        while let f = s.next() { last = f }
        #expect(last.map { WireError(body: $0.body) }?.message.contains("bad frames in one burst") == true)
        let rss = rssMiB(d)
        print("RSS after a flood of 20,000 bad frames: \(rss) MiB")
        #expect(rss > 0 && rss < 256, "RSS \(rss) MiB")
        let w = try RawSocket(path: d.socket)
        w.append(event(org: "org_a", i: 2), id: 1)
        #expect(w.next()?.type == FrameType.ack.rawValue)
        #expect(d.stop() == 0)
    }

    @Test func idleAndStalledPeersAreClosed() throws {
        let d = Daemon("idle", args: ["--idle-timeout", "1"])
        defer { d.cleanup() }
        try d.start()
        let idle = try RawSocket(path: d.socket)
        let stalled = try RawSocket(path: d.socket)
        stalled.send(Array(Self.partialFrame.prefix(500)))
        let busy = try RawSocket(path: d.socket)
        busy.append(event(org: "org_a", i: 3), id: 9)
        #expect(busy.next()?.type == FrameType.ack.rawValue)
        usleep(2_500_000)
        for (name, s) in [("idle", idle), ("stalled", stalled)] {
            let f = s.next()
            #expect(f.map { WireError(body: $0.body) }?.code == WireErrorCode.unavailable.rawValue, "\(name)")
            #expect(s.next() == nil, "\(name) connection is closed")
        }
        #expect(d.stop() == 0)
    }
}
