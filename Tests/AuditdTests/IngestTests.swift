import AuditBase
import AuditWire
import Foundation
import SegmentStore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Bad input on the real socket: each gets its clear error (or the connection is dropped), the
/// daemon keeps serving everyone else, and nothing accepted is lost.
@Suite(.serialized) struct IngestTests {
    func ackSeq(_ f: Frame?) -> UInt64? {
        guard let f, f.type == FrameType.ack.rawValue, let a = Ack(body: f.body) else { return nil }
        return a.seq
    }

    func errorOf(_ f: Frame?) -> WireError? {
        guard let f, f.type == FrameType.error.rawValue else { return nil }
        return WireError(body: f.body)
    }

    @Test func badInputGetsClearErrorsAndTheConnectionStaysUsable() async throws {
        let d = Daemon("ingest")
        defer { d.cleanup() }
        try d.start()
        let s = try RawSocket(path: d.socket)
        var accepted = 0
        s.append(event(org: "org_a", i: 1), id: 1)
        #expect(ackSeq(s.next()) == 0)
        accepted += 1

        let cases: [(String, [UInt8], WireErrorCode, String)] = [
            ("malformed JSON", Array(#"{"org":"org_a","#.utf8), .invalidEntry, "invalid JSON"),
            (
                "bad UTF-8", Array(event(org: "org_a", i: 2).utf8).map { $0 == UInt8(ascii: "p") ? 0xC3 : $0 },
                .invalidEntry, "UTF-8"
            ),
            (
                "unknown category", Array(event(org: "org_a", i: 3, category: "weather").utf8), .invalidEntry,
                "field 'category'"
            ),
            (
                "missing field",
                Array(event(org: "org_a", i: 4).replacingOccurrences(of: #""outcome":"success","#, with: "").utf8),
                .invalidEntry, "field 'outcome': is required"
            ),
            (
                "forbidden field", Array(event(org: "org_a", i: 5, extra: #","search_query":"salaries""#).utf8),
                .invalidEntry, "never be stored"
            ),
            ("float", Array(event(org: "org_a", i: 6, extra: #","ratio":0.5"#).utf8), .invalidEntry, "floating-point"),
            (
                "unknown member",
                Array(
                    event(org: "org_a", i: 8).replacingOccurrences(
                        of: #""outcome":"#, with: #""zz_label_bomb_1":1,"outcome":"#
                    ).utf8), .invalidEntry, "zz_label_bomb_1"
            ),
            (
                "oversized", Array(repeating: UInt8(ascii: " "), count: 70_000) + Array(event(org: "org_a", i: 7).utf8),
                .frameTooLarge, "exceeds"
            ),
        ]
        for (k, (name, body, code, text)) in cases.enumerated() {
            s.send(Frame(type: .append, id: UInt64(100 + k), body: body))
            let reply = s.next()
            #expect(reply?.id == UInt64(100 + k), "\(name)")
            let e = errorOf(reply)
            #expect(e?.code == code.rawValue, "\(name): \(e?.description ?? "no error")")
            #expect(e?.message.contains(text) == true, "\(name): \(e?.message ?? "")")
            // Still usable: a good entry right after is stored.
            s.append(event(org: "org_a", i: 200 + k), id: UInt64(200 + k))
            #expect(ackSeq(s.next()) == UInt64(accepted), "after \(name)")
            accepted += 1
        }
        // An unknown frame type, and a ping.
        s.send(Frame(rawType: 0x7F, id: 300, body: []))
        #expect(errorOf(s.next())?.code == WireErrorCode.malformedFrame.rawValue)
        s.send(Frame(type: .ping, id: 301))
        #expect(s.next()?.type == FrameType.pong.rawValue)

        // A writer that vanishes mid-frame, and one that sends an unparseable length.
        do {
            let v = try RawSocket(path: d.socket)
            v.send(Array(Frame(type: .append, id: 1, body: Array(event(org: "org_a", i: 9).utf8)).encoded.prefix(40)))
        }
        let bad = try RawSocket(path: d.socket)
        bad.send([3, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        #expect(errorOf(bad.next())?.code == WireErrorCode.malformedFrame.rawValue)
        #expect(bad.isClosed())

        // Everyone else is still served.
        s.append(event(org: "org_b", i: 10), id: 400)
        #expect(ackSeq(s.next()) == UInt64(accepted))
        accepted += 1
        let other = try RawSocket(path: d.socket)
        other.append(event(org: "org_b", i: 11), id: 1)
        #expect(ackSeq(other.next()) == UInt64(accepted))
        accepted += 1

        // Rejections are counted by reason.
        let (status, metrics) = try await d.http("/metrics", token: nil)
        #expect(status == 200)
        let m = String(decoding: metrics, as: UTF8.self)
        #expect(m.contains(#"auditd_rejected_total{reason="category"} 1"#))
        #expect(m.contains(#"auditd_rejected_total{reason="frame_too_large"} 1"#))
        // Issue 7 B10: a member name a peer made up never becomes a label value.
        #expect(m.contains(#"auditd_rejected_total{reason="other_field"} 1"#))
        #expect(!m.contains("zz_label_bomb"))
        #expect(m.contains("auditd_group_commit_seconds_count"))
        #expect(m.contains("auditd_ack_latency_seconds_count"))
        #expect(m.contains("auditd_sealer_slowdown_seconds") && m.contains("auditd_sealer_backpressure_seconds"))
        #expect(m.contains("auditd_entries_ingested_total"))

        #expect(d.stop() == 0)
        let (vs, vout, _) = try d.ctl(["verify", d.data, "--quiet"])
        #expect(vs == 0)
        #expect(vout.contains("OK: \(accepted) entries"), "\(vout)")
    }

    @Test func theSpecsWireExampleHoldsByteForByte() throws {
        let d = Daemon("wire")
        defer { d.cleanup() }
        try d.start()
        let s = try RawSocket(path: d.socket)
        s.send([UInt8](hex: "0b00000001" + "0100000000000000" + "7b7d") ?? [])
        let f = try #require(s.next())
        #expect(
            f.encoded == ([UInt8](hex: "23000000" + "83" + "0100000000000000" + "0100") ?? [])
                + Array("field 'org': is required".utf8))
        #expect(d.stop() == 0)
    }

    @Test func pipelinedRequestsAreEachAnswered() throws {
        let d = Daemon("pipeline")
        defer { d.cleanup() }
        try d.start()
        let s = try RawSocket(path: d.socket)
        var bytes: [UInt8] = []
        for i in 0..<500 {
            let body = i % 50 == 7 ? #"{"nope":1}"# : event(org: "org_\(i % 3)", i: i)
            bytes += Frame(type: .append, id: UInt64(i + 1), body: Array(body.utf8)).encoded
        }
        s.send(bytes)
        var acks = Set<UInt64>()
        var errors = 0
        var seqs = Set<UInt64>()
        for _ in 0..<500 {
            guard let f = s.next() else { break }
            if let q = ackSeq(f) {
                acks.insert(f.id)
                seqs.insert(q)
            } else {
                errors += 1
            }
        }
        #expect(acks.count == 490)
        #expect(errors == 10)
        #expect(seqs == Set((0..<490).map { UInt64($0) }))
        #expect(d.stop() == 0)
    }

    @Test func idempotentRetriesReturnTheOriginalAckAcrossARestart() throws {
        let d = Daemon("idem")
        defer { d.cleanup() }
        try d.start()
        var s = try RawSocket(path: d.socket)
        s.append(event(org: "org_a", i: 1, key: "k-1"), id: 1)
        let first = s.next()
        s.append(event(org: "org_a", i: 1, key: "k-1"), id: 2)
        let again = s.next()
        let a1 = try #require(first.flatMap { Ack(body: $0.body) })
        let a2 = try #require(again.flatMap { Ack(body: $0.body) })
        #expect(a1.seq == a2.seq && a1.hash == a2.hash)
        #expect(!a1.duplicate && a2.duplicate)
        s.append(event(org: "org_a", i: 2, key: "k-2"), id: 3)
        #expect(ackSeq(s.next()) == 1)

        // kill -9, restart: the key is still remembered.
        d.kill9()
        try d.start()
        s = try RawSocket(path: d.socket)
        s.append(event(org: "org_a", i: 1, key: "k-1"), id: 4)
        let a3 = try #require(s.next().flatMap { Ack(body: $0.body) })
        #expect(a3.seq == a1.seq && a3.duplicate)
        s.append(event(org: "org_a", i: 3, key: "k-3"), id: 5)
        #expect(ackSeq(s.next()) == 2)
        #expect(d.stop() == 0)
    }

    /// Issue 7 A5: the same writer reusing a key for another org gets that org's entry
    /// stored and acked with its own seq, before and after a restart.
    @Test func anIdempotencyKeyReusedForAnotherOrgIsAnotherEntry() throws {
        let d = Daemon("idem-org")
        defer { d.cleanup() }
        try d.start()
        var s = try RawSocket(path: d.socket)
        s.append(event(org: "org_a", i: 1, key: "shared"), id: 1)
        let a = try #require(s.next().flatMap { Ack(body: $0.body) })
        s.append(event(org: "org_b", i: 1, key: "shared"), id: 2)
        let b = try #require(s.next().flatMap { Ack(body: $0.body) })
        #expect(b.seq != a.seq && !b.duplicate)
        #expect(b.orgSeq == 0)
        d.kill9()
        try d.start()
        s = try RawSocket(path: d.socket)
        s.append(event(org: "org_b", i: 1, key: "shared"), id: 3)
        let b2 = try #require(s.next().flatMap { Ack(body: $0.body) })
        #expect(b2.seq == b.seq && b2.duplicate)
        s.append(event(org: "org_a", i: 1, key: "shared"), id: 4)
        let a2 = try #require(s.next().flatMap { Ack(body: $0.body) })
        #expect(a2.seq == a.seq && a2.duplicate)
        #expect(d.stop() == 0)
    }

    @Test func peersOutsideTheAllowListAreRefused() throws {
        let d = Daemon("peer", args: ["--allow-uids", "4242", "--allow-gids", "4242"])
        defer { d.cleanup() }
        try d.start()
        let s = try RawSocket(path: d.socket)
        let e = errorOf(s.next())
        #expect(e?.code == WireErrorCode.forbidden.rawValue)
        #expect(e?.message.contains("not an allowed writer") == true)
        #expect(s.isClosed())
        let mode = (try FileManager.default.attributesOfItem(atPath: d.socket)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o660)
        #expect(d.stop() == 0)
    }
}
