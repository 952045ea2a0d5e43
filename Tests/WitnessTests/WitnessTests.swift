import AuditBase
import Foundation
import LogProofs
import SegmentStore
import TestSupport
import Testing

@testable import AuditEntries
@testable import ChainIndex
@testable import Witness

/// Issue 10: a witness (C2SP tlog-witness) cosigns a log's checkpoint only when it extends
/// the one it cosigned before, keeps that state across restarts, and refuses forks and
/// rollbacks with the status codes the spec names, its state unchanged. Cosignatures are
/// exactly C2SP tlog-cosignature's cosignature/v1.
@Suite struct WitnessTests {
    /// A real log (in-process ledger) that can be grown, and a witness configured for it.
    struct Setup {
        let dir: String
        let signer: NoteSigner
        let ledger: Ledger
        var witness: Witness
        let cosigner: Cosigner
        var next = 0

        init() throws {
            dir = temporaryDirectory("witness")
            signer = try NoteSigner.generate(name: "audit.test/log")
            var o = LedgerOptions()
            o.background = false
            ledger = try Ledger(directory: dir + "/log", signer: signer, options: o)
            cosigner = Cosigner(key: try NoteSigner.generate(name: "witness.test/w1"))
            witness = try Witness(
                cosigner: cosigner, logs: [LogKeys(signer.verifier)], stateDirectory: dir + "/state",
                clock: { 1_700_000_000 })
        }

        /// Appends `n` entries and returns the new signed checkpoint.
        mutating func grow(_ n: Int) throws -> SignedCheckpoint {
            _ = try ledger.appendAndWait(
                (0..<n).map { k in
                    let json =
                        #"{"org":"org_a","category":"access","action":"access.granted","actor":{"type":"human","id":"u1"},"target":{"type":"doc","id":"d\#(next + k)"},"outcome":"success","source":{"service":"svc"},"occurred_at":"2026-01-01T00:00:00Z"}"#
                    return try Entry.prepare(
                        json: Array(json.utf8), receivedAt: 1_767_225_600_000 + Int64(next + k),
                        writer: Writer(uid: 0, gid: 0, via: "test"))
                })
            next += n
            try ledger.checkpointNow()
            return try #require(ledger.latestCheckpoint)
        }

        func request(old: UInt64, proof: [Hash] = [], note: String) -> [UInt8] {
            Array(
                ("old \(old)\n" + proof.map { Data($0.bytes).base64EncodedString() + "\n" }.joined() + "\n" + note).utf8
            )
        }

        func proof(_ old: UInt64, _ new: UInt64) throws -> [Hash] {
            old == 0 ? [] : try ledger.consistencyProof(old: old, new: new)
        }
    }

    @Test func cosignsAGrowingLogAndTheCosignatureIsCosignatureV1() throws {
        var s = try Setup()
        defer {
            try? s.ledger.close()
            try? FileManager.default.removeItem(atPath: s.dir)
        }
        let c1 = try s.grow(10)
        let r1 = s.witness.addCheckpoint(s.request(old: 0, note: c1.note))
        #expect(r1.status == 200, "\(r1)")
        let body = c1.checkpoint.text
        // The line, byte by byte: "— " name " " base64(keyID || timestamp BE || Ed25519 signature).
        #expect(r1.body.hasPrefix("— witness.test/w1 ") && r1.body.hasSuffix("\n"))
        let raw = try #require(Data(base64Encoded: String(r1.body.dropFirst("— witness.test/w1 ".count).dropLast())))
        #expect(raw.count == 76)
        let pub = s.cosigner.verifier.publicKey
        let id = SHA256.hash(Array("witness.test/w1".utf8) + [0x0A, 0x04] + pub).bytes.prefix(4)
        #expect(Array(raw.prefix(4)) == Array(id))
        #expect(raw[4..<12].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } == 1_700_000_000)
        let message = "cosignature/v1\ntime 1700000000\n" + body
        #expect(Ed25519.verify(Array(raw[12...]), message: Array(message.utf8), publicKey: pub))
        // Appended to the checkpoint, it verifies with the witness's key, and another key's
        // line is ignored.
        #expect(try s.cosigner.verifier.cosignature(in: c1.note + r1.body) == 1_700_000_000)
        #expect(try s.cosigner.verifier.cosignature(in: c1.note) == nil)
        #expect(throws: Note.Failure.self) {
            _ = try s.cosigner.verifier.cosignature(
                in: c1.note.replacingOccurrences(of: "\n10\n", with: "\n11\n") + r1.body)
        }

        // The log grows: the witness needs the consistency proof from what it cosigned.
        let c2 = try s.grow(7)
        let r2 = s.witness.addCheckpoint(s.request(old: 10, proof: try s.proof(10, 17), note: c2.note))
        #expect(r2.status == 200, "\(r2)")
        #expect(s.witness.latest(s.signer.name) == Witness.LogState(size: 17, root: c2.checkpoint.root))
        // The same checkpoint again: old = size, same root.
        #expect(s.witness.addCheckpoint(s.request(old: 17, note: c2.note)).status == 200)
    }

    @Test func aForkAndARollbackAreRefusedAndTheStateIsUnchanged() throws {
        var s = try Setup()
        defer {
            try? s.ledger.close()
            try? FileManager.default.removeItem(atPath: s.dir)
        }
        let c1 = try s.grow(5)
        let c2 = try s.grow(6)
        #expect(s.witness.addCheckpoint(s.request(old: 0, note: c2.note)).status == 200)
        let before = s.witness.latest(s.signer.name)
        let stateBytes = try Data(contentsOf: URL(fileURLWithPath: s.dir + "/state/witness-state"))

        // A fork: the log's key signs another tree of the same size.
        let forked = try s.signer.sign(
            Checkpoint(origin: s.signer.name, size: 11, root: SHA256.hash(Array("other".utf8))).text)
        let fork = s.witness.addCheckpoint(s.request(old: 11, note: forked))
        #expect(fork.status == 409 && fork.body.contains("forked"), "\(fork)")
        // A rollback: a smaller tree, claimed to extend what the witness holds…
        let back = s.witness.addCheckpoint(s.request(old: 11, note: c1.note))
        #expect(back.status == 400, "\(back)")
        // …or presented from its own size: the witness answers with what it holds.
        let stale = s.witness.addCheckpoint(s.request(old: 5, note: c1.note))
        #expect(stale == Witness.Response(status: 409, body: "11\n", contentType: "text/x.tlog.size"))
        // A larger fork: a bigger tree whose proof cannot reach the cosigned root.
        let bigger = try s.signer.sign(
            Checkpoint(origin: s.signer.name, size: 20, root: SHA256.hash(Array("other".utf8))).text)
        let bad = s.witness.addCheckpoint(s.request(old: 11, proof: try s.proof(5, 11), note: bigger))
        #expect(bad.status == 422, "\(bad)")
        #expect(s.witness.latest(s.signer.name) == before)
        #expect(try Data(contentsOf: URL(fileURLWithPath: s.dir + "/state/witness-state")) == stateBytes)

        // Issue 23 §2: the note it cosigned is kept, and each contradiction is kept beside it
        // as evidence: the offending checkpoint (signed by the log's key) and the cosigned note.
        let kept = try String(contentsOfFile: s.witness.notePath(s.signer.name), encoding: .utf8)
        #expect(kept == c2.note)
        let files = try FileManager.default.contentsOfDirectory(atPath: s.dir + "/state/evidence").sorted()
        #expect(files.count == 2 && files[0].contains("-fork-11-") && files[1].contains("-proof-20-"), "\(files)")
        #expect(fork.body.contains("kept as evidence: evidence/\(files[0])") && bad.body.contains("kept as evidence"))
        #expect(!fork.body.contains(s.dir), "the answer names where the witness keeps its state")
        let forkEvidence = try String(contentsOfFile: s.dir + "/state/evidence/" + files[0], encoding: .utf8)
        #expect(forkEvidence.contains(c2.note) && forkEvidence.hasSuffix(forked), "\(forkEvidence)")
        // Both notes in it verify with the log's key: transferable proof of the fork.
        #expect(try s.signer.verifier.open(c2.note) != s.signer.verifier.open(forked))
        // Bounded: past `maxEvidence` files, the answer says so and nothing more is written.
        for k in 0..<Witness.maxEvidence {
            let other = try s.signer.sign(
                Checkpoint(origin: s.signer.name, size: 11, root: SHA256.hash(Array("other \(k)".utf8))).text)
            _ = s.witness.addCheckpoint(s.request(old: 11, note: other))
        }
        let last = try s.signer.sign(
            Checkpoint(origin: s.signer.name, size: 11, root: SHA256.hash(Array("last".utf8))).text)
        #expect(s.witness.addCheckpoint(s.request(old: 11, note: last)).body.contains("not kept as evidence"))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: s.dir + "/state/evidence").count == Witness.maxEvidence)
    }

    @Test func unknownLogsForeignKeysAndMalformedRequestsAreRefused() throws {
        var s = try Setup()
        defer {
            try? s.ledger.close()
            try? FileManager.default.removeItem(atPath: s.dir)
        }
        let c = try s.grow(3)
        let other = try NoteSigner.generate(name: "other.test/log")
        let unknown = try other.sign(Checkpoint(origin: "other.test/log", size: 3, root: c.checkpoint.root).text)
        #expect(s.witness.addCheckpoint(s.request(old: 0, note: unknown)).status == 404)
        // The log's origin, signed by another key.
        let impostor = try NoteSigner.generate(name: s.signer.name)
        #expect(s.witness.addCheckpoint(s.request(old: 0, note: try impostor.sign(c.checkpoint.text))).status == 403)
        #expect(s.witness.addCheckpoint(Array("old 01\n\n\(c.note)".utf8)).status == 400)
        #expect(s.witness.addCheckpoint(Array("old 0\n".utf8)).status == 400)
        #expect(
            s.witness.addCheckpoint(s.request(old: 4, note: c.note)).status == 400, "old size above the checkpoint's")
        #expect(s.witness.addCheckpoint(s.request(old: 0, proof: [c.checkpoint.root], note: c.note)).status == 422)
        #expect(s.witness.latest(s.signer.name) == nil)
    }

    @Test func theStateSurvivesARestartAndDamageIsRefused() throws {
        var s = try Setup()
        defer {
            try? s.ledger.close()
            try? FileManager.default.removeItem(atPath: s.dir)
        }
        let c = try s.grow(4)
        #expect(s.witness.addCheckpoint(s.request(old: 0, note: c.note)).status == 200)
        // While it runs, no second witness may use its state (issue 18 item 3).
        #expect(throws: AuditError.self) {
            _ = try Witness(cosigner: s.cosigner, logs: [LogKeys(s.signer.verifier)], stateDirectory: s.dir + "/state")
        }
        // Stopped (its lock released with it), a new one takes over what it cosigned.
        s.witness = try Witness(cosigner: s.cosigner, logs: [], stateDirectory: s.dir + "/other-state")
        let again = try Witness(
            cosigner: s.cosigner, logs: [LogKeys(s.signer.verifier)], stateDirectory: s.dir + "/state")
        #expect(again.latest(s.signer.name)?.size == 4)
        #expect(again.addCheckpoint(s.request(old: 0, note: c.note)).status == 409)
        // A witness that silently forgot its state could be rolled back: it refuses to start.
        let path = s.dir + "/state/witness-state"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.startIndex + 20] ^= 0x01
        _ = chmod(path, 0o600)
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(throws: AuditError.self) {
            _ = try Witness(cosigner: s.cosigner, logs: [LogKeys(s.signer.verifier)], stateDirectory: s.dir + "/state")
        }
    }

    /// C2SP tlog-cosignature's own example: its cosignature line carries key ID, then the
    /// big-endian timestamp of its signed message ("time 1679315147"), then 64 bytes.
    /// Issue 18 item 21: the verdict on a configured witness's lines, in one place for every
    /// command that counts cosignatures. A line of its key that does not verify, two lines of
    /// its key, or a time more than ten minutes ahead of the verifier's clock refuse the note.
    @Test func aBadDuplicateOrFutureCosignatureRefusesTheNote() throws {
        var s = try Setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let cp = try s.grow(3)
        let body = cp.checkpoint.text
        let now: UInt64 = 1_800_000_000
        let good = try s.cosigner.cosign(body: body, time: now - 60)
        let v = s.cosigner.verifier
        #expect(try v.cosignature(in: cp.note + good, now: now) == now - 60)
        // Signed over another body: the line claims this key but does not verify.
        let other = try s.cosigner.cosign(body: body.replacingOccurrences(of: "\n3\n", with: "\n4\n"), time: now - 60)
        #expect(throws: Note.Failure.self) { _ = try v.cosignature(in: cp.note + other, now: now) }
        // The same witness twice (two valid lines at two times).
        let again = try s.cosigner.cosign(body: body, time: now - 30)
        #expect(throws: Note.Failure.self) { _ = try v.cosignature(in: cp.note + good + again, now: now) }
        // Dated an hour ahead; within ten minutes is clock skew and passes.
        #expect(throws: Note.Failure.self) {
            _ = try v.cosignature(in: cp.note + (try s.cosigner.cosign(body: body, time: now + 3600)), now: now)
        }
        #expect(
            try v.cosignature(in: cp.note + (try s.cosigner.cosign(body: body, time: now + 300)), now: now) == now + 300
        )
    }

    @Test func theSpecsExampleLineHasTheLayoutWeWrite() throws {
        let line =
            "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
        let raw = try #require(Data(base64Encoded: String(line.split(separator: " ")[2])))
        #expect(raw.count == 4 + 8 + 64)
        #expect(raw[4..<12].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } == 1_679_315_147)
        let body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        #expect(
            Cosignature.message(body: body, time: 1_679_315_147)
                == "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        )
        // A verifier key round-trips, and a key ID that does not match is refused.
        let v = Cosigner(key: try NoteSigner.generate(name: "witness.example.com/w1")).verifier
        #expect(try CosignatureVerifier(v.text) == v)
        #expect(throws: Note.Failure.self) {
            _ = try CosignatureVerifier(
                v.text.replacingOccurrences(of: "+", with: "+0", options: [], range: v.text.range(of: "+")))
        }
    }
}
