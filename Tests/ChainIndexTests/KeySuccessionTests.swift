import AuditBase
import Foundation
import LogProofs
import TestSupport
import Testing

@testable import AuditEntries
@testable import ChainIndex
@testable import Verification

/// Keys that outlive themselves (format-spec.md §8.8): a statement signed by both keys, a
/// chain followed from the first key, checkpoints held to the key in force at their size.
@Suite struct KeySuccessionTests {
    let first: NoteSigner
    let second: NoteSigner
    let third: NoteSigner

    init() throws {
        first = try Sample.signer()
        second = try Sample.signer()
        third = try Sample.signer()
    }

    func checkpointNote(size: UInt64, by signers: [NoteSigner]) throws -> String {
        let text = Checkpoint(origin: "audit.test/log", size: size, root: SHA256.hash(Array("\(size)".utf8))).text
        var note = try signers[0].sign(text)
        for s in signers.dropFirst() { note = try Note.cosign(note, with: s) }
        return note
    }

    @Test func aStatementIsSignedByBothKeysAndParsesBack() throws {
        let s = try KeySuccession.sign(old: first, new: second, handover: 10, grace: 5)
        #expect(s.handover == 10 && s.graceEnd == 15 && s.old == first.verifier && s.new == second.verifier)
        #expect(try KeySuccession(note: s.note) == s)
        #expect(try first.verifier.open(s.note) == second.verifier.open(s.note))
    }

    @Test func aForgedSuccessionSignedByTheNewKeyAloneIsRefused() throws {
        let text = KeySuccession.text(
            origin: "audit.test/log", old: first.verifier, new: third.verifier, handover: 10, graceEnd: 10)
        let forged = try third.sign(text)
        let e = #expect(throws: Note.Failure.self) { try KeySuccession(note: forged) }
        #expect(e?.description.contains("not signed by the key it replaces") == true)
        // Two signatures by other keys (one posing under the old key's hash) do not help either.
        let twice = try Note.cosign(forged, with: second)
        #expect(throws: Note.Failure.self) { try LogKeys(trusting: first.verifier, successions: [twice]) }
        // A chain that skips a key: the statement from the second to the third does not follow
        // from the first.
        let real = try KeySuccession.sign(old: first, new: second, handover: 10, grace: 0)
        let next = try KeySuccession.sign(old: second, new: third, handover: 20, grace: 0)
        var keys = LogKeys(first.verifier)
        let skip = #expect(throws: Note.Failure.self) { try keys.follow(next) }
        #expect(skip?.description.contains("key in force") == true)
        try keys.follow(real)
        try keys.follow(next)
        #expect(keys.current == third.verifier)
    }

    @Test func eachCheckpointIsHeldToTheKeyInForceAtItsSize() throws {
        let keys = try LogKeys(
            trusting: first.verifier,
            successions: [
                try KeySuccession.sign(old: first, new: second, handover: 10, grace: 5).note,
                try KeySuccession.sign(old: second, new: third, handover: 30, grace: 0).note,
            ])
        // Before the first handover only the first key; from it to its grace end either; then
        // the second, which (grace 0) still signs the second handover's own size, 30; then
        // only the third.
        #expect(try SignedCheckpoint(note: checkpointNote(size: 9, by: [first]), verifier: keys).checkpoint.size == 9)
        #expect(throws: Note.Failure.self) {
            try SignedCheckpoint(note: checkpointNote(size: 9, by: [second]), verifier: keys)
        }
        _ = try SignedCheckpoint(note: checkpointNote(size: 12, by: [second, first]), verifier: keys)
        _ = try SignedCheckpoint(note: checkpointNote(size: 15, by: [first]), verifier: keys)
        let retired = #expect(throws: Note.Failure.self) {
            try SignedCheckpoint(note: checkpointNote(size: 16, by: [first]), verifier: keys)
        }
        #expect(retired?.description.contains("retired key") == true)
        _ = try SignedCheckpoint(note: checkpointNote(size: 29, by: [second]), verifier: keys)
        #expect(throws: Note.Failure.self) {
            try SignedCheckpoint(note: checkpointNote(size: 31, by: [second]), verifier: keys)
        }
        _ = try SignedCheckpoint(note: checkpointNote(size: 1000, by: [third]), verifier: keys)
        // A verifier that trusts only a later key needs none of the statements before it.
        let later = try LogKeys(trusting: second.verifier, successions: keys.notes)
        #expect(later.current == third.verifier)
        _ = try SignedCheckpoint(note: checkpointNote(size: 1000, by: [third]), verifier: later)
    }

    @Test func theLedgerHandsOverRecordsTheStatementAndReopensWithTheNewKeyOnly() throws {
        let dir = temporaryDirectory("handover")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var ledger: Ledger? = try Ledger(directory: dir, signer: first, options: Sample.options())
        _ = try ledger?.appendAndWait((0..<5).map { try Sample.prepared(org: "org_a", i: $0) })
        let done = try #require(try ledger?.handOver(to: second, grace: 3, actor: "uid:0", via: "test"))
        #expect(done.record.seq == 5 && done.succession.handover == 6 && done.succession.graceEnd == 9)
        // The entry at H - 1 holds the statement itself, so every checkpoint from H commits to it.
        let record = try #require(try ledger?.entries(seqs: [5]).first)
        let v = try Entry.decodeStored(record.content)
        #expect(v["action"]?.stringValue == "log.key.rotated" && v["org"]?.stringValue == "_operator")
        #expect(v["metadata"]?["statement"]?.stringValue == Data(done.succession.note.utf8).base64EncodedString())
        #expect(v["metadata"]?["handover"]?.stringValue == "6")
        // The checkpoint at the handover carries both signatures.
        let at = try #require(try ledger?.checkpoints.first(atLeast: 6, verifier: LogKeys(second.verifier)))
        #expect(at.checkpoint.size == 6)
        _ = try first.verifier.open(at.note)
        _ = try second.verifier.open(at.note)
        _ = try ledger?.appendAndWait((5..<20).map { try Sample.prepared(org: "org_a", i: $0) })
        try ledger?.checkpointNow()
        let latest = try #require(ledger?.latestCheckpoint)
        #expect(latest.checkpoint.size == 21)
        #expect(throws: Note.Failure.self) { try first.verifier.open(latest.note) }
        // A second handover, then a restart: only the newest key opens the log.
        _ = try ledger?.handOver(to: third, grace: 0, actor: "uid:0", via: "test")
        try ledger?.close()
        ledger = nil
        let refused = #expect(throws: AuditError.self) {
            try Ledger(directory: dir, signer: second, options: Sample.options())
        }
        #expect(refused?.message.contains("handed on") == true)
        let reopened = try Ledger(directory: dir, signer: third, options: Sample.options())
        #expect(reopened.verifier.successions.count == 2 && reopened.verifier.original == first.verifier)
        try reopened.close()
        // `auditctl verify`'s verifier, trusting the first key only, checks every checkpoint.
        let keys = try Ledger.keys(directory: dir, trusting: first.verifier)
        let report = try Verifier(directory: dir, key: keys).run()
        #expect(report.failure == nil, "\(report.failure.map { "\($0)" } ?? "")")
        #expect(report.checkpoints >= 3)
    }

    @Test func aDirectoryCannotMakeTheTrustedKeyFollowAForgedStatement() throws {
        let dir = temporaryDirectory("handover-forged")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ledger = try Ledger(directory: dir, signer: first, options: Sample.options())
        _ = try ledger.appendAndWait([try Sample.prepared(org: "org_a", i: 0)])
        try ledger.close()
        // log.json edited to hand the log to a key whose statement only that key signed.
        let path = DataDirectory(dir).info
        var info = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        let text = KeySuccession.text(
            origin: "audit.test/log", old: first.verifier, new: third.verifier, handover: 1, graceEnd: 1)
        info["key_successions"] = [try Note.cosign(try third.sign(text), with: second)]
        try JSONSerialization.data(withJSONObject: info).write(to: URL(fileURLWithPath: path))
        let e = #expect(throws: AuditError.self) { try Ledger.keys(directory: dir, trusting: first.verifier) }
        #expect(e?.message.contains("not signed by the key it replaces") == true)
        #expect(throws: AuditError.self) { try Ledger(directory: dir, signer: third, options: Sample.options()) }
    }
}
