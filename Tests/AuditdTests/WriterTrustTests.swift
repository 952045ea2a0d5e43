import Foundation
import LogProofs
import Testing

/// Issue 18, items 1, 2 and 4: a writer that keeps a checkpoint fails closed. A log that
/// shows no checkpoint, or a smaller one, while the writer holds one is refused before a
/// single entry is written; witnesses that cannot be reached never count as a pass.
@Suite(.serialized) struct WriterTrustTests {
    /// The first entry appended now gets this sequence number: 0 means nothing was written
    /// since the log was emptied.
    static func nextSeq(_ d: Daemon, org: String = "org_probe") throws -> UInt64? {
        let (s, out, _) = try d.ctl(["append", "--socket", d.socket], stdin: event(org: org, i: 0) + "\n")
        guard s == 0, let o = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] else {
            return nil
        }
        return (o["seq"] as? NSNumber)?.uint64Value
    }

    @Test func aLogWithNoCheckpointIsARollbackRefusedBeforeAnyWrite() throws {
        let d = Daemon("writer-nocp")
        defer { d.cleanup() }
        try d.start()
        let key = try d.ctl(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let state = d.root + "/writer.checkpoint"
        let lines = (0..<30).map { event(org: "org_a", i: $0) }.joined(separator: "\n") + "\n"
        #expect(try d.ctl(["append", "--socket", d.socket, "--state", state, "--key", key], stdin: lines).0 == 0)
        try WriterWitnessTests.rollBack(d)
        // The new log has no checkpoint yet: that is itself a rollback of the 30 held.
        let started = Date()
        let (s, _, err) = try d.ctl(["append", "--socket", d.socket, "--state", state, "--key", key], stdin: lines)
        #expect(s == 4 && err.contains("ROLLBACK"), "\(s) \(err)")
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(try Self.nextSeq(d) == 0, "the refused writer wrote entries into the rolled-back log")
        #expect(d.stop() == 0)
    }

    @Test func aKeptCheckpointOfTheEmptyLogIsExtendedByAnyGrowth() throws {
        let d = Daemon("writer-empty")
        defer { d.cleanup() }
        try d.start()
        #expect(d.stop() == 0)  // A clean stop signs the empty tree.
        try d.start()
        let key = try d.ctl(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let state = d.root + "/writer.checkpoint"
        let (s0, _, e0) = try d.ctl(["append", "--socket", d.socket, "--state", state, "--key", key], stdin: "")
        #expect(s0 == 0, "\(e0)")
        let held = try SignedCheckpoint(
            note: String(contentsOfFile: state, encoding: .utf8), verifier: NoteVerifier(key))
        #expect(held.checkpoint.size == 0)
        for round in 0..<2 {
            let lines = (0..<5).map { event(org: "org_a", i: 10 * round + $0) }.joined(separator: "\n") + "\n"
            let (s, _, err) = try d.ctl(["append", "--socket", d.socket, "--state", state, "--key", key], stdin: lines)
            #expect(s == 0 && !err.contains("FORK"), "round \(round): \(err)")
        }
        let now = try SignedCheckpoint(
            note: String(contentsOfFile: state, encoding: .utf8), verifier: NoteVerifier(key))
        #expect(now.checkpoint.size >= 10)
        #expect(d.stop() == 0)
    }

    @Test func aWitnessModeWriterRefusesARolledBackLogWhoseWitnessesAreGone() throws {
        let d = Daemon("writer-witnessed")
        defer { d.cleanup() }
        let (served, vkey, logKey) = try WitnessServeTests.witnessedLog(d)
        defer { served.kill9() }
        d.extraArgs = ["--witness", "\(served.url) \(vkey)", "--witness-quorum", "1", "--witness-interval", "1"]
        try d.start()
        let state = d.root + "/writer.checkpoint"
        let witness = ["--state", state, "--key", logKey, "--witness", vkey]
        let lines = (0..<30).map { event(org: "org_a", i: $0) }.joined(separator: "\n") + "\n"
        let (s1, _, e1) = try d.ctl(["append", "--socket", d.socket] + witness, stdin: lines)
        #expect(s1 == 0, "\(e1)")
        let held = try SignedCheckpoint(
            note: String(contentsOfFile: state, encoding: .utf8), verifier: NoteVerifier(logKey))
        let cosigned = try CosignatureVerifier(vkey).cosignature(in: held.note)
        #expect(held.checkpoint.size >= 30 && cosigned != nil)

        // The operator removes the log and its signer state, and restarts without witnesses.
        served.kill9()
        d.extraArgs = []
        try WriterWitnessTests.rollBack(d)
        let (s2, _, e2) = try d.ctl(["append", "--socket", d.socket] + witness, stdin: lines)
        #expect(s2 == 4 && e2.contains("ROLLBACK"), "\(s2) \(e2)")
        #expect(try Self.nextSeq(d) == 0, "the refused writer wrote entries into the rolled-back log")
        // Once the new log has checkpoints, smaller than the one held, still a rollback.
        _ = try d.ctl(
            ["append", "--socket", d.socket],
            stdin: (0..<5).map { event(org: "org_b", i: $0) }.joined(separator: "\n") + "\n")
        Thread.sleep(forTimeInterval: 1.5)
        let (s3, _, e3) = try d.ctl(["append", "--socket", d.socket] + witness, stdin: lines)
        #expect(s3 == 4 && e3.contains("ROLLBACK"), "\(s3) \(e3)")
        #expect(try Self.nextSeq(d) == 6)
        #expect(d.stop() == 0)
    }

    @Test func aWitnessListedTwiceCountsOnceOrIsRefused() throws {
        let d = Daemon("witness-twice")
        defer { d.cleanup() }
        try d.start()
        #expect(d.stop() == 0)
        let logKey = try d.ctl(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let vkey = try d.ctl(["witness", "key", "--key", d.root + "/w.key", "--name", "witness.test/w"]).1
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let path = d.root + "/empty.ndjson"
        FileManager.default.createFile(atPath: path, contents: Data())
        let (vs, vout, verr) = try d.ctl([
            "verify-export", path, "--key", logKey, "--witness", vkey, "--witness", vkey, "--quorum", "2",
        ])
        #expect(vs != 0 && !vout.contains("WITNESSED") && (vout + verr).contains("listed twice"), "\(vout) \(verr)")
        let (ds, dout, derr) = try d.ctl(["verify", d.data, "--witness", vkey, "--witness", vkey])
        #expect(ds != 0 && (dout + derr).contains("listed twice"), "\(dout) \(derr)")
        let (as_, _, aerr) = try d.ctl(
            [
                "append", "--socket", d.socket, "--state", d.root + "/s", "--key", logKey, "--witness", vkey,
                "--witness", vkey,
            ], stdin: "")
        #expect(as_ != 0 && aerr.contains("listed twice"), "\(aerr)")
        // The daemon's config: the same witness twice, even with a trailing slash on its URL.
        let (cs, cout) = try runProgram(
            Daemon.product("auditd"),
            [
                "--check-config", "--data", d.data,
                "--witness", "http://127.0.0.1:9/ \(vkey)", "--witness", "http://127.0.0.1:9 \(vkey)",
            ])
        #expect(cs != 0 && cout.contains("listed twice"), "\(cout)")
    }
}
