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
            _ = try EntryReceipt(json: edited).verify(key: key)
        }
    }
}
