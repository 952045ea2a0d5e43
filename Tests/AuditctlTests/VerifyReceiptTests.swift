import Foundation
import LogProofs
import LogTree
import Testing

/// Issue 18, item 6: `verify-receipt` passes nothing it did not check.
@Suite struct VerifyReceiptTests {
    /// A genuine receipt of a one-entry log, and the log's key.
    static func receipt() throws -> (String, NoteVerifier) {
        let signer = try NoteSigner.generate(name: "audit.test/receipts")
        let leaf = Merkle.leafHash(Array("entry".utf8))
        let note = try signer.sign(Checkpoint(origin: signer.name, size: 1, root: leaf).text)
        return (EntryReceipt(seq: 0, hash: leaf, checkpoint: note, inclusion: []).json(), signer.verifier)
    }

    @Test func anEmptyReceiptsFileIsNotOK() throws {
        let dir = temporaryDirectory("receipts")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (line, key) = try Self.receipt()
        let good = dir + "/good.ndjson"
        let empty = dir + "/empty.ndjson"
        try (line + "\n").write(toFile: good, atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: empty, contents: Data())
        let (gs, gout, _) = try run("auditctl", ["verify-receipt", good, "--key", key.text])
        #expect(gs == 0 && gout.contains("OK: 1 receipt"), "\(gout)")
        let (es, eout, _) = try run("auditctl", ["verify-receipt", empty, "--key", key.text])
        #expect(es == 1 && eout.contains("FAILED") && !eout.contains("OK"), "\(eout)")
    }

    @Test(arguments: ["0.5", "0.0", "18446744073709551616", "-1", "1e0", "\"0\""])
    func aSeqThatIsNotAWholeUInt64IsRefused(_ seq: String) throws {
        let (line, key) = try Self.receipt()
        let edited = line.replacingOccurrences(of: "\"seq\":0", with: "\"seq\":\(seq)")
        #expect(edited != line)
        #expect(throws: (any Error).self, "seq \(seq) was read as a sequence number") {
            _ = try EntryReceipt(json: edited).verify(key: LogKeys(key))
        }
    }

    /// Issue 23 §2: `prove inclusion --format tlog-proof` writes a C2SP tlog-proof of a real
    /// log's entry, `verify-receipt` checks it, and an edited one is refused.
    @Test func aTlogProofOfARealEntryVerifiesAndAnEditedOneDoesNot() throws {
        let root = temporaryDirectory("tlog-proof")
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(
            try run(
                "auditctl", ["import", root + "/d", "--key", root + "/k.key", "--quiet"], stdin: Data(events(40).utf8)
            )
            .0 == 0)
        let pub = try run("auditctl", ["key", root + "/d"]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let (ps, proof, perr) = try run(
            "auditctl", ["prove", "inclusion", root + "/d", "--seq", "17", "--format", "tlog-proof"])
        #expect(ps == 0, "\(perr)")
        let lines = proof.split(separator: "\n", omittingEmptySubsequences: false)
        // The spec's layout: tag, extra, index, the proof lines, an empty line, the checkpoint.
        #expect(lines.count > 8 && lines[0] == "c2sp.org/tlog-proof@v1" && lines[1].hasPrefix("extra "))
        #expect(lines[2] == "index 17" && lines.contains("") && proof.hasSuffix("\n"), "\(proof)")
        let receipt = try EntryReceipt(tlogProof: proof)
        #expect(receipt.seq == 17 && receipt.tlogProof == proof)
        let file = root + "/e17.tlog-proof"
        try proof.write(toFile: file, atomically: true, encoding: .utf8)
        let (vs, vout, _) = try run("auditctl", ["verify-receipt", file, "--key", pub, "--data", root + "/d"])
        #expect(vs == 0 && vout.contains("OK: 1 receipt"), "\(vout)")

        // Another index, a proof line changed, a non-canonical index: each refused.
        let firstProofLine = String(lines[3])
        var bent = Array(try #require(Data(base64Encoded: firstProofLine)))
        bent[0] ^= 1
        for (what, edited) in [
            ("index", proof.replacingOccurrences(of: "\nindex 17\n", with: "\nindex 18\n")),
            ("proof", proof.replacingOccurrences(of: firstProofLine, with: Data(bent).base64EncodedString())),
            ("leading zero", proof.replacingOccurrences(of: "\nindex 17\n", with: "\nindex 017\n")),
        ] {
            try edited.write(toFile: file, atomically: true, encoding: .utf8)
            let (es, eout, _) = try run("auditctl", ["verify-receipt", file, "--key", pub])
            #expect(es == 1 && eout.hasPrefix("FAILED: the tlog-proof"), "\(what): \(eout)")
        }
    }
}
