import AuditClient
import AuditWire
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A plain TCP connection to the read port that sends what it is told and never reads.
final class TCPPeer {
    let fd: Int32

    init(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        // Non-blocking connect: past the daemon's cap, connections wait in the backlog.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    deinit { close(fd) }

    func send(_ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// True once the daemon closed the connection (a read returns end of file or a reset).
    func closedByPeer() -> Bool {
        var b = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &b, b.count, Int32(MSG_DONTWAIT))
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET || errno == EPIPE }
        }
    }
}

/// Issue 19, items 4, 6, 7, 8, 9, 10 and 12, and issue 18 item 7: no reader, however slow,
/// many or hostile, stops ingest or another reader, and nothing but the ingest socket writes.
@Suite(.serialized) struct ReadPortDoorTests {
    static func descriptors(_ d: Daemon) -> Int {
        guard let pid = d.process?.processIdentifier else { return -1 }
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
    }

    @Test func idleAndHalfSentConnectionsNeitherStopWritesNorStayOpen() async throws {
        var lim = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
        lim.rlim_cur = min(lim.rlim_max, 8192)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
        let d = Daemon("read-doors", args: ["--http-max-connections", "64", "--http-idle-timeout", "2"])
        defer { d.cleanup() }
        try d.start()
        let before = Self.descriptors(d)
        var peers: [TCPPeer] = []
        for i in 0..<1_500 {
            let p = TCPPeer(port: d.port)
            if i % 3 == 0 { p.send("GET /v1/orgs/org_a/entries HTTP/1.1\r\nHost: x\r\nAuthoriz") }  // never finished
            peers.append(p)
        }
        try await Task.sleep(for: .milliseconds(500))
        let during = Self.descriptors(d)
        // A writer is served meanwhile, and every entry is acknowledged.
        let lines = (0..<500).map { event(org: "org_a", i: $0) }.joined(separator: "\n") + "\n"
        let started = Date()
        let (s, _, err) = try await d.ctlOffPool(["append", "--socket", d.socket], stdin: lines)
        let writeSeconds = Date().timeIntervalSince(started)
        #expect(s == 0, "\(err)")
        // An honest reader gets its answer once the idle ones are closed (2 s here). Its
        // connection may be dropped on the way: 1,500 connects overflow the listen backlog
        // (256), and a handshake the kernel left half-open carries the request's bytes late,
        // by the client's retransmission, so the daemon may close it as idle ("empty reply")
        // before they arrive. A client retries that; the daemon's part is to answer a
        // request it has, which it must within the wait.
        let tok = try d.token(org: "org_a")
        let readStarted = Date()
        var rs = 0
        var attempts = 0
        while rs == 0, Date().timeIntervalSince(readStarted) < 120 {
            attempts += 1
            do { rs = try await d.http("/v1/orgs/org_a/entries?limit=10", token: tok).0 } catch let e as URLError {
                print("honest read, attempt \(attempts): \(e.code) after \(Date().timeIntervalSince(readStarted)) s")
            }
        }
        let readSeconds = Date().timeIntervalSince(readStarted)
        #expect(rs == 200, "no answer in \(attempts) attempts over \(readSeconds) s")
        try await Task.sleep(for: .seconds(3))
        let closed = peers.prefix(64).filter { $0.closedByPeer() }.count
        print(
            "read port under 1,500 idle or half-sent connections (cap 64, idle timeout 2 s): descriptors \(before) → \(during); 500 appends took \(String(format: "%.2f", writeSeconds)) s; an honest page \(String(format: "%.2f", readSeconds)) s (\(attempts) attempts); \(closed) of the first 64 closed by the daemon"
        )
        #expect(
            during < before + 64 + 32, "the read port took \(during - before) descriptors for 1,500 idle connections")
        #expect(closed >= 60, "idle and half-sent connections were not closed (\(closed) of 64)")
        peers.removeAll()
        #expect(d.stop() == 0)
    }

    @Test func headDoesNotExportAndExportsAreRateLimitedPerToken() async throws {
        let d = Daemon("export-head")
        defer { d.cleanup() }
        try d.start()
        #expect(
            try await d.ctlOffPool(["append", "--socket", d.socket], stdin: event(org: "org_a", i: 0) + "\n").0 == 0)
        let tok = try d.token(org: "org_a")
        func exported() async throws -> Int {
            let page = try await d.json("/v1/orgs/org_a/entries?action=audit_log.exported&limit=100", token: tok)
            return ((page["entries"] as? [[String: Any]]) ?? []).count
        }
        for _ in 0..<20 {
            let (s, body) = try await d.http("/v1/orgs/org_a/export", token: tok, method: "HEAD")
            #expect(s == 200 && body.isEmpty)
        }
        #expect(try await exported() == 0, "a HEAD ran an export")
        // 14 at once: the bucket (10, then one every 2 s) admits them within milliseconds,
        // however long each export then takes (one after another, a debug build on a busy
        // machine took long enough for the bucket to refill between them: no 429 at all).
        let statuses = try await withThrowingTaskGroup(of: Int.self) { g in
            for _ in 0..<14 { g.addTask { try await d.http("/v1/orgs/org_a/export", token: tok).0 } }
            var all: [Int] = []
            for try await s in g { all.append(s) }
            return all
        }
        let ok = statuses.filter { $0 == 200 }.count
        #expect((10...11).contains(ok), "\(statuses)")
        #expect(statuses.allSatisfy { $0 == 200 || $0 == 429 }, "\(statuses)")
        #expect(statuses.contains(429), "a looping export client was never slowed: \(statuses)")
        #expect(try await exported() == ok)
        // Another token is not slowed by the first one's exports.
        let other = try d.token(org: "org_a")
        #expect(try await d.http("/v1/orgs/org_a/export", token: other).0 == 200)
        #expect(d.stop() == 0)
    }

    @Test func aRevokedTokensFeedEndsAndStalledFeedsDoNotHoldUpAStop() async throws {
        let d = Daemon("feed-doors")
        defer { d.cleanup() }
        try d.start()
        let tok = try d.token(org: "org_a")
        let id = try #require(try await d.json("/v1/session", token: tok)["token_id"] as? String)
        #expect(
            try await d.ctlOffPool(["append", "--socket", d.socket], stdin: event(org: "org_a", i: 0) + "\n").0 == 0)
        // 18.7: the feed of a token revoked meanwhile ends.
        let feed = Task { try await d.http("/v1/orgs/org_a/feed", token: tok) }
        try await Task.sleep(for: .milliseconds(500))
        let (rv, _, rerr) = try await d.ctlOffPool(["token", "revoke", d.data, id, "--socket", d.socket])
        #expect(rv == 0, "\(rerr)")
        let revokedAt = Date()
        let ended = try await withThrowingTaskGroup(of: Bool.self) { g in
            g.addTask {
                _ = try await feed.value
                return true
            }
            g.addTask {
                try await Task.sleep(for: .seconds(15))
                return false
            }
            let first = try await g.next() ?? false
            g.cancelAll()
            return first
        }
        #expect(ended, "the revoked token's feed kept streaming")
        print(
            "a revoked token's feed ended \(String(format: "%.1f", Date().timeIntervalSince(revokedAt))) s after the revocation"
        )

        // 19.9: feeds whose readers never read (their socket buffers full) end at SIGTERM.
        let live = try d.token(org: "org_a")
        let bulk =
            (0..<20_000).map { event(org: "org_a", i: $0, extra: #","pad":"\#(String(repeating: "x", count: 200))""#) }
            .joined(separator: "\n") + "\n"
        #expect(try await d.ctlOffPool(["append", "--socket", d.socket], stdin: bulk).0 == 0)
        var stalled: [TCPPeer] = []
        for _ in 0..<10 {
            let p = TCPPeer(port: d.port)
            var rcv: Int32 = 4096
            setsockopt(p.fd, SOL_SOCKET, SO_RCVBUF, &rcv, socklen_t(MemoryLayout<Int32>.size))
            try await Task.sleep(for: .milliseconds(20))
            p.send("GET /v1/orgs/org_a/feed HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(live)\r\n\r\n")
            stalled.append(p)
        }
        // Each of them is sent entries it never reads. Watched until all ten are, for up to 20 s:
        // a fixed 2 s wait saw 9 of 10 on a clean clone's loaded run.
        var streaming = 0
        let deadline = Date().addingTimeInterval(20)
        repeat {
            try await Task.sleep(for: .milliseconds(200))
            streaming =
                stalled.filter { p in
                    var b = [UInt8](repeating: 0, count: 16)
                    return recv(p.fd, &b, b.count, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0
                }.count
        } while streaming < 10 && Date() < deadline
        #expect(streaming == 10, "only \(streaming) of the 10 stalled feeds were streaming after 20 s")
        let stopStarted = Date()
        #expect(d.stop() == 0)
        let stopSeconds = Date().timeIntervalSince(stopStarted)
        print("SIGTERM with 10 stalled feeds: stopped in \(String(format: "%.1f", stopSeconds)) s")
        // 5 s: the feeds once made their chunks on the shared concurrency pool, and a stop
        // waited behind them (5.2 s alone, up to 15 s in a full run; 0.4 s alone since).
        #expect(stopSeconds < 5, "stopping took \(stopSeconds) s with stalled feeds")
        // It stopped cleanly: its final checkpoint covers every entry.
        let note = try await d.ctlOffPool(["checkpoint", d.data]).1
        let size = note.split(separator: "\n").dropFirst().first.flatMap { UInt64($0) } ?? 0
        #expect(size >= 20_002, "\(note)")
        stalled.removeAll()
    }

    @Test func pagesNearTheTailDuringIngestNeverFailAndInclusionOfNothingIsNotRetryable() async throws {
        let d = Daemon("tail-reads")
        defer { d.cleanup() }
        try d.start()
        let tok = try d.token(org: "org_a")
        #expect(
            try await d.ctlOffPool(["append", "--socket", d.socket], stdin: event(org: "org_a", i: 0) + "\n").0 == 0)
        let writer = Task.detached {
            let lines = (0..<30_000).map { event(org: "org_a", i: $0) }.joined(separator: "\n") + "\n"
            return try await d.ctlOffPool(["append", "--socket", d.socket, "--batch", "8"], stdin: lines).0
        }
        var statuses: [Int: Int] = [:]
        var bad: [String] = []
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline && statuses.values.reduce(0, +) < 900 {
            for path in [
                "/v1/orgs/org_a/entries?limit=50", "/v1/orgs/org_a/entries?limit=50&category=access",
                "/v1/orgs/org_a/feed?limit=50",
            ] {
                let (s, body) = try await d.http(path, token: tok)
                statuses[s, default: 0] += 1
                if s != 200 { bad.append("\(s) \(String(decoding: body.prefix(200), as: UTF8.self))") }
            }
        }
        #expect(try await writer.value == 0)
        print("reads near the tail during ingest: \(statuses)")
        #expect(bad.isEmpty, "\(bad.prefix(3))")

        // An INCLUSION for an entry that does not exist is refused for good, at once.
        let c = try await AuditClient.connect(socketPath: d.socket)
        do {
            _ = try await c.inclusion([1 << 40])
            Issue.record("an INCLUSION for an entry that does not exist was answered")
        } catch let e as WireError {
            #expect(
                e.code != WireErrorCode.unavailable.rawValue,
                "a retryable answer for an entry that can never exist: \(e)")
        }
        await c.close()
        #expect(d.stop() == 0)
    }
    /// Issue 19 item 11: an org whose name holds "/" reads its own log (the name sent as %2F).
    @Test func anOrgWithASlashInItsNameReadsItsLog() async throws {
        let d = Daemon("slash-org")
        defer { d.cleanup() }
        try d.start()
        #expect(
            try await d.ctlOffPool(["append", "--socket", d.socket], stdin: event(org: "team/a", i: 1) + "\n").0 == 0)
        let tok = try d.token(org: "team/a")
        let (s, body) = try await d.http("/v1/orgs/team%2Fa/entries", token: tok)
        #expect(s == 200, "\(String(decoding: body, as: UTF8.self))")
        let page = try JSONSerialization.jsonObject(with: body) as? [String: Any]
        #expect(
            ((page?["entries"] as? [[String: Any]]) ?? []).contains {
                ($0["entry"] as? [String: Any])?["org"] as? String == "team/a"
            })
        let other = try d.token(org: "team")
        #expect(try await d.http("/v1/orgs/team%2Fa/entries", token: other).0 == 403)
        #expect(d.stop() == 0)
    }

    /// Issue 19 item 6: clients flooding INCLUSION requests (1,024 proofs each) do not starve
    /// an honest writer's acks; proofs run off the event loop, 4 at most per connection.
    @Test func anInclusionFloodLeavesWritersServed() async throws {
        let d = Daemon("inclusion-flood")
        defer { d.cleanup() }
        try d.start()
        let bulk = (0..<60_000).map { event(org: "org_a", i: $0) }.joined(separator: "\n") + "\n"
        #expect(try await d.ctlOffPool(["append", "--socket", d.socket], stdin: bulk).0 == 0)
        try await Task.sleep(for: .milliseconds(1500))  // a checkpoint covers them
        let seqs = (0..<1024).map { UInt64($0 * 50) }
        let stop = Flag()
        var flooders: [Task<(Int, Int), Never>] = []
        for _ in 0..<30 {
            let c = try await AuditClient.connect(socketPath: d.socket)
            flooders.append(
                Task.detached {
                    var answered = 0
                    var refused = 0
                    while !stop.isSet {
                        // Eight pipelined at a time: more than the four a connection may have.
                        await withTaskGroup(of: Bool.self) { g in
                            for _ in 0..<8 { g.addTask { (try? await c.inclusion(seqs)) != nil } }
                            for await ok in g { if ok { answered += 1 } else { refused += 1 } }
                        }
                    }
                    await c.close()
                    return (answered, refused)
                })
        }
        try await Task.sleep(for: .milliseconds(500))
        let w = try await AuditClient.connect(socketPath: d.socket)
        var lat: [Double] = []
        let started = Date()
        var i = 0
        while Date().timeIntervalSince(started) < 8 {
            let t = Date()
            _ = try await w.append(Array(event(org: "org_b", i: i).utf8))
            lat.append(Date().timeIntervalSince(t) * 1000)
            i += 1
        }
        stop.set()
        var answered = 0
        var refused = 0
        for f in flooders {
            let (a, r) = await f.value
            answered += a
            refused += r
        }
        let after = Date()
        _ = try await w.append(Array(event(org: "org_b", i: 999).utf8))
        let afterMs = Date().timeIntervalSince(after) * 1000
        await w.close()
        lat.sort()
        let p50 = lat.isEmpty ? -1 : lat[lat.count / 2]
        let p99 = lat.isEmpty ? -1 : lat[lat.count * 99 / 100]
        print(
            "INCLUSION flood (30 connections, 8 pipelined requests of 1,024 proofs each, 60,000-entry log): an honest writer's \(lat.count) acks in 8 s, p50 \(String(format: "%.1f", p50)) ms, p99 \(String(format: "%.1f", p99)) ms; \(answered) requests answered, \(refused) refused; the next append after the flood \(String(format: "%.1f", afterMs)) ms"
        )
        #expect(lat.count >= 100, "the honest writer got \(lat.count) acks in 8 s")
        #expect(answered >= 100, "the flood was not sustained (\(answered) requests answered)")
        #expect(refused > 0, "no request was refused past four in flight per connection")
        #expect(afterMs < 5_000)
        #expect(d.stop() == 0)
    }

    /// Issue 19 item 12: activity never answers buckets of 0 ms.
    @Test func activityBucketsAreNeverEmptySpans() async throws {
        let d = Daemon("activity-span")
        defer { d.cleanup() }
        try d.start()
        #expect(
            try await d.ctlOffPool(["append", "--socket", d.socket], stdin: event(org: "org_a", i: 1) + "\n").0 == 0)
        let tok = try d.token(org: "org_a")
        let (s, body) = try await d.http(
            "/v1/orgs/org_a/activity?from=2026-01-01T00:00:00.000Z&to=2026-01-01T00:00:00.010Z&buckets=30", token: tok)
        #expect(
            s == 400 && String(decoding: body, as: UTF8.self).contains("buckets need at least 30 ms"),
            "\(s) \(String(decoding: body, as: UTF8.self))")
        let ok = try await d.json(
            "/v1/orgs/org_a/activity?from=2026-01-01T00:00:00.000Z&to=2026-01-01T00:00:00.030Z&buckets=30", token: tok)
        #expect(ok["bucket_ms"] as? Int == 1)
        #expect(d.stop() == 0)
    }

    @Test func oneTokensLoopingScansLeaveOtherOrgsPagesFast() async throws {
        let d = Daemon("token-gate")
        defer { d.cleanup() }
        try d.start()
        let busy = (0..<40_000).map { event(org: "org_a", i: $0) }.joined(separator: "\n") + "\n"
        #expect(try await d.ctlOffPool(["append", "--socket", d.socket], stdin: busy).0 == 0)
        #expect(
            try await d.ctlOffPool(
                ["append", "--socket", d.socket],
                stdin: (0..<200).map { event(org: "org_b", i: $0) }.joined(separator: "\n") + "\n"
            ).0 == 0)
        let noisy = try d.token(org: "org_a")
        let honest = try d.token(org: "org_b")
        func p50(_ n: Int) async throws -> Double {
            var t: [Double] = []
            for _ in 0..<n {
                let started = Date()
                let (s, _) = try await d.http("/v1/orgs/org_b/entries?limit=100", token: honest)
                #expect(s == 200)
                t.append(Date().timeIntervalSince(started) * 1000)
            }
            return t.sorted()[t.count / 2]
        }
        let quiet = try await p50(40)
        let stop = Flag()
        let loops = (0..<6).map { k in
            Task.detached {
                var n = 0
                while !stop.isSet {
                    let path =
                        k % 2 == 0 ? "/v1/orgs/org_a/activity" : "/v1/orgs/org_a/entries?q=no-such-text&limit=100"
                    _ = try? await d.http(path, token: noisy)
                    n += 1
                }
                return n
            }
        }
        try await Task.sleep(for: .milliseconds(500))
        let loud = try await p50(40)
        stop.set()
        var scans = 0
        for l in loops { scans += await l.value }
        print(
            "another org's page while one token loops 6 scans: p50 \(String(format: "%.1f", quiet)) ms quiet, \(String(format: "%.1f", loud)) ms during (\(scans) scans)"
        )
        #expect(
            loud < max(250, quiet * 20), "one token's scans slowed another org's page to \(loud) ms (\(quiet) ms quiet)"
        )
        #expect(d.stop() == 0)
    }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
