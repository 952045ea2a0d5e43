import AuditBase
import Foundation
import LogProofs
import SegmentStore
import Testing

@testable import AuditEntries
@testable import AuditIndex
@testable import ChainIndex
@testable import Verification

/// What export proofs stand on (format-spec.md §5.1, §9.3): `received_at` never decreases in
/// sequence order, and an export's own audit entry gets a checkpoint at exactly its size.
@Suite struct ExportAnchorTests {
    func time(_ e: StoredEntry) -> String? { CanonicalScan.topLevelString(e.content, key: "received_at") }

    @Test func restampingChangesOnlyTheTopLevelTime() throws {
        let json = Array(
            #"{"org":"o","category":"access","action":"a","actor":{"type":"human","id":"u"},"target":{"type":"t","id":"1"},"outcome":"success","source":{"service":"s"},"occurred_at":"2025-03-01T00:00:00.000Z","metadata":{"received_at":"2020-01-01T00:00:00.000Z"}}"#
                .utf8)
        for e in [
            try Entry.prepare(json: json, receivedAt: 1_000, writer: Writer(uid: 1, gid: 1, via: "socket")),
            try Entry.generalPrepare(json: json, receivedAt: 1_000, writer: Writer(uid: 1, gid: 1, via: "socket")),
        ] {
            let r = try #require(e.restamped(1_740_787_200_123))
            #expect(r.fields.time == 1_740_787_200_123)
            #expect(r.contentHash == SHA256.hash(r.content))
            let v = try Entry.decodeStored(r.content)
            #expect(v["received_at"]?.stringValue == "2025-03-01T00:00:00.123Z")
            #expect(v["metadata"]?["received_at"]?.stringValue == "2020-01-01T00:00:00.000Z")
            // The same bytes the writer path makes for that time.
            let direct = try Entry.prepare(
                json: json, receivedAt: 1_740_787_200_123, writer: Writer(uid: 1, gid: 1, via: "socket"))
            #expect(r.content == direct.content)
        }
    }

    @Test func receivedAtNeverDecreasesAcrossGroupsAndRestarts() throws {
        let dir = temporaryDirectory("stamp")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let signer = try Sample.signer()
        var l = try Ledger(directory: dir, signer: signer, options: Sample.options())
        let base: Int64 = 1_740_787_200_000
        _ = try l.appendAndWait([
            try Sample.prepared(org: "a", i: 0, at: base + 5_000),
            try Sample.prepared(org: "b", i: 0, at: base + 3_000),
        ])
        _ = try l.appendAndWait([
            try Sample.prepared(org: "a", i: 0, at: base + 4_000),
            try Sample.prepared(org: "a", i: 0, at: base + 9_000),
        ])
        #expect(
            try (0..<4).map { time(try l.entry(seq: $0)) } == [
                "2025-03-01T00:00:05.000Z", "2025-03-01T00:00:05.000Z", "2025-03-01T00:00:05.000Z",
                "2025-03-01T00:00:09.000Z",
            ])
        // The index holds the stamped time: a query from 5 s finds all four.
        #expect(try l.query(org: "a", filter: QueryFilter(from: base + 5_000)).count == 3)
        try l.close()
        l = try Ledger(directory: dir, signer: signer, options: Sample.options())
        _ = try l.appendAndWait([try Sample.prepared(org: "a", i: 0, at: base)])
        #expect(time(try l.entry(seq: 4)) == "2025-03-01T00:00:09.000Z", "a clock that stepped back across a restart")
        try l.close()
        let report = try Verifier(directory: dir, key: LogKeys(signer.verifier)).run()
        #expect(report.ok, "\(report.failure.map { "\($0)" } ?? "")")
    }

    @Test func anAnchoredEntryGetsACheckpointAtExactlyItsSizeWhileOthersWrite() async throws {
        let dir = temporaryDirectory("anchor")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let signer = try Sample.signer()
        var o = Sample.options()
        o.background = true
        let l = try Ledger(directory: dir, signer: signer, options: o)
        let writers = (0..<4).map { w in
            Task.detached {
                for i in 0..<200 {
                    _ = try l.appendAndWait([
                        try Sample.prepared(org: "org_\(w)", i: i, at: 1_740_787_200_000 + Int64(i))
                    ])
                }
            }
        }
        var anchors: [(Receipt, SignedCheckpoint)] = []
        for i in 0..<40 {
            anchors.append(try l.appendAnchored(try Sample.prepared(org: "org_x", i: i)))
        }
        for w in writers { try await w.value }
        for (r, cp) in anchors {
            #expect(cp.checkpoint.size == r.seq + 1)
            #expect(try SignedCheckpoint(note: cp.note, verifier: signer.verifier).checkpoint == cp.checkpoint)
            #expect(
                Merkle.verifyInclusion(
                    index: r.seq, size: r.seq + 1, leaf: r.hash,
                    proof: try l.inclusionProof(seq: r.seq, size: r.seq + 1), root: cp.checkpoint.root))
        }
        try l.close()
        let report = try Verifier(directory: dir, key: LogKeys(signer.verifier)).run()
        #expect(report.ok, "\(report.failure.map { "\($0)" } ?? "")")
    }
}
