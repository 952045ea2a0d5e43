import AuditBase
import Foundation
import LogProofs
import SegmentStore
import Testing

@testable import LogTree

/// The checkpoint log's recovery rule (format-spec.md §8.2): only a torn last record is cut.
@Suite struct CheckpointLogTests {
    func logWithCheckpoints(_ dir: String, _ n: Int) throws -> (NoteSigner, [Int64]) {
        let signer = try Sample.signer()
        let log = try CheckpointLog(directory: dir, verifier: LogKeys(signer.verifier))
        var ends: [Int64] = []
        for i in 1...n {
            let cp = Checkpoint(origin: signer.name, size: UInt64(i), root: SHA256.hash([UInt8(i)]))
            try log.append(SignedCheckpoint(checkpoint: cp, note: try signer.sign(cp.text)))
            ends.append(Int64(fileSize(dir + "/checkpoints.log")))
        }
        return (signer, ends)
    }

    @Test func tornLastRecordIsCut() throws {
        let dir = temporaryDirectory("cplog")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (signer, ends) = try logWithCheckpoints(dir, 5)
        try shrink(dir + "/checkpoints.log", to: Int(ends[3]) + 20)
        let log = try CheckpointLog(directory: dir, verifier: LogKeys(signer.verifier))
        #expect(log.total == 4)
        #expect(log.latest?.checkpoint.size == 4)
        #expect(Int64(fileSize(dir + "/checkpoints.log")) == ends[3])
    }

    /// Halving the file under a running writer leaves a hole, then the records signed after
    /// it: those are never cut; opening fails naming the damaged offset.
    @Test func damageBeforeValidRecordsIsCorruptionNotATornTail() throws {
        let dir = temporaryDirectory("cplog")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let signer = try Sample.signer()
        let log = try CheckpointLog(directory: dir, verifier: LogKeys(signer.verifier))
        for i in 1...10 {
            if i == 6 { try shrink(dir + "/checkpoints.log", to: fileSize(dir + "/checkpoints.log") / 2) }
            let cp = Checkpoint(origin: signer.name, size: UInt64(i), root: SHA256.hash([UInt8(i)]))
            try log.append(SignedCheckpoint(checkpoint: cp, note: try signer.sign(cp.text)))
        }
        let before = fileSize(dir + "/checkpoints.log")
        let e = #expect(throws: AuditError.self) {
            try CheckpointLog(directory: dir, verifier: LogKeys(signer.verifier))
        }
        #expect(e?.code == .corrupt)
        #expect(e?.path == dir + "/checkpoints.log")
        #expect(fileSize(dir + "/checkpoints.log") == before, "signed checkpoints after the damage are kept")
    }

    @Test(arguments: [0, 3, 4, 9, 16, 40])
    func flippedByteOfAMiddleRecordIsCorruption(at byte: Int) throws {
        let dir = temporaryDirectory("cplog")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (signer, ends) = try logWithCheckpoints(dir, 5)
        try flipByte(dir + "/checkpoints.log", at: Int(ends[1]) + byte)
        let e = #expect(throws: AuditError.self) {
            try CheckpointLog(directory: dir, verifier: LogKeys(signer.verifier))
        }
        #expect(e?.offset == ends[1])
        #expect(Int64(fileSize(dir + "/checkpoints.log")) == ends[4])
    }
}
