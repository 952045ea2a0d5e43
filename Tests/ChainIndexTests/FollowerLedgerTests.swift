import AuditBase
import Foundation
import LogProofs
import SegmentStore
import Testing

@testable import AuditEntries
@testable import ChainIndex

/// A follower ledger (a read replica's copy, format-spec.md §12.6): another log's records in
/// order through the chain rule, only that log's checkpoints, no writes of its own.
@Suite struct FollowerLedgerTests {
    static func entries(_ n: Int, from k: Int = 0) throws -> [PreparedEntry] {
        try (k..<(k + n)).map { i in
            let json =
                #"{"org":"org_\#(i % 3)","category":"access","action":"a","actor":{"type":"human","id":"u\#(i)"},"target":{"type":"t","id":"\#(i)"},"outcome":"success","source":{"service":"s"},"occurred_at":"2025-03-01T00:00:00.000Z"}"#
            return try Entry.prepare(
                json: Array(json.utf8), receivedAt: 1_000 + Int64(i), writer: Writer(uid: 1, gid: 1, via: "socket"))
        }
    }

    /// A primary of `n` entries with a checkpoint, its records, and a follower beside it.
    static func pair(_ n: Int, dir: String) throws -> (Ledger, [StoredRecord], Ledger, NoteSigner) {
        var o = LedgerOptions()
        o.background = false
        let signer = try NoteSigner.generate(name: "follow.test/log")
        let primary = try Ledger(directory: dir + "/primary", signer: signer, options: o)
        _ = try primary.appendAndWait(try entries(n))
        try primary.checkpointNow()
        var records: [StoredRecord] = []
        try primary.store.scan {
            records.append($0)
            return true
        }
        let follower = try Ledger(following: dir + "/follower", verifier: LogKeys(signer.verifier), options: o)
        return (primary, records, follower, signer)
    }

    @Test func aFollowerHoldsTheSameLogAndAdoptsItsCheckpoints() throws {
        let dir = temporaryDirectory("follow")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (primary, records, follower, _) = try Self.pair(50, dir: dir)
        try follower.appendVerbatim(Array(records[0..<20]))
        try follower.appendVerbatim(Array(records[20...]))
        #expect(follower.size == 50)
        #expect(try follower.leaves(from: 0, count: 50) == primary.leaves(from: 0, count: 50))
        #expect(follower.latestCheckpoint == nil, "a follower signs nothing")
        let cp = try #require(primary.latestCheckpoint)
        try follower.adopt(cp)
        #expect(follower.latestCheckpoint?.note == cp.note)
        // Its org index serves queries as the primary's does.
        #expect(
            try follower.query(org: "org_1", filter: .init(), newestFirst: true, limit: 5).map(\.seq)
                == primary.query(org: "org_1", filter: .init(), newestFirst: true, limit: 5).map(\.seq))
        // Closed and opened again, it is still the same log, and still signs nothing.
        try follower.close()
        let again = try Ledger(following: dir + "/follower", verifier: primary.verifier)
        #expect(again.size == 50 && again.latestCheckpoint?.note == cp.note)
        try again.close()
        try primary.close()
    }

    @Test func aFollowerRefusesWritesAndRecordsThatDoNotContinueTheLog() throws {
        let dir = temporaryDirectory("follow")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (primary, records, follower, signer) = try Self.pair(12, dir: dir)
        defer {
            try? follower.close()
            try? primary.close()
        }
        #expect(throws: AuditError.self) { try follower.appendAndWait(try Self.entries(1)) }
        #expect(throws: AuditError.self) { try follower.sign("x\n") }
        #expect(throws: AuditError.self) { try primary.appendVerbatim(records) }
        // A gap, a record moved to another place in its org's chain, another org's group key:
        // each refused whole, nothing of the call stored.
        #expect(throws: AuditError.self) { try follower.appendVerbatim([records[0], records[2]]) }
        #expect(follower.size == 0)
        try follower.appendVerbatim(Array(records[0..<3]))
        var moved = records[3]
        let p = try RecordPayload(bytes: moved.payload)
        moved.payload = RecordPayload(orgSeq: p.orgSeq + 1, prevOrgDelta: p.prevOrgDelta, content: p.content).bytes
        #expect(throws: AuditError.self) { try follower.appendVerbatim([moved]) }
        #expect(follower.size == 3)
        var rekeyed = records[3]
        rekeyed.key &+= 1
        #expect(throws: AuditError.self) { try follower.appendVerbatim([rekeyed]) }
        try follower.appendVerbatim(Array(records[3...]))
        #expect(follower.size == 12)
        // A checkpoint signed with the log's key over another root: refused.
        let forged = Checkpoint(origin: "follow.test/log", size: 12, root: .zero)
        let note = try SignedCheckpoint(note: try signer.sign(forged.text), verifier: follower.verifier)
        #expect(throws: AuditError.self) { try follower.adopt(note) }
        #expect(follower.latestCheckpoint == nil)
    }
}
