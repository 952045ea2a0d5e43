import AuditBase
import AuditClient
import AuditWire
import Foundation
import LogProofs
import TestSupport
import Testing
import WriterWitness

/// Every writer a witness, on its own: a fake log answers CHECKPOINT with whatever history the
/// test gives it, and the writer keeps a checkpoint only when it extends the one it holds.
@Suite struct WriterWitnessTests {
    /// A log in memory whose history the test can grow, roll back or fork.
    final class History: @unchecked Sendable {
        let signer: NoteSigner
        private let lock = NSLock()
        private var leaves: [Hash] = []

        init() throws { signer = try NoteSigner.generate(name: "audit.test/fake") }

        func set(_ n: Int, fork: Bool = false) {
            lock.withLock {
                leaves = (0..<n).map {
                    Merkle.leafHash(Array("entry \($0)\(fork && $0 == n - 1 ? " forked" : "")".utf8))
                }
            }
        }

        func reply(to f: Frame) -> [Frame] {
            guard f.type == FrameType.checkpoint.rawValue, let req = CheckpointRequest(body: f.body) else { return [] }
            return lock.withLock {
                guard !leaves.isEmpty else {
                    return [.error(id: f.id, code: .unavailable, message: "no checkpoint signed yet")]
                }
                let size = UInt64(leaves.count)
                let cp = Checkpoint(origin: signer.verifier.name, size: size, root: Merkle.root(leaves[...]))
                guard let note = try? signer.sign(cp.text) else { return [] }
                let proof =
                    req.old > 0 && req.old < size
                    ? Merkle.consistencyProof(old: req.old, new: size) { Merkle.root(leaves[Int($0)..<Int($1)]) } : []
                return [
                    Frame(
                        type: .checkpointReply, id: f.id,
                        body: CheckpointReply(note: note, proof: proof.map(\.bytes)).body)
                ]
            }
        }
    }

    func withLog(_ body: (History, AuditClient, WriterWitness) async throws -> Void) async throws {
        let h = try History()
        let server = try FakeIngestSocket { h.reply(to: $0) }
        defer { server.stop() }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kept-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let w = try WriterWitness(path: file, key: LogKeys(h.signer.verifier), patience: .milliseconds(200))
        let c = try await AuditClient.connect(socketPath: server.path)
        try await body(h, c, w)
        await c.close()
    }

    @Test func aGrowingLogIsKeptAndARolledBackOneRefused() async throws {
        try await withLog { h, c, w in
            h.set(5)
            let r1 = try await w.check(c)
            #expect(r1.kept?.checkpoint.size == 5)
            h.set(9)
            let r2 = try await w.check(c)
            #expect(r2.kept?.checkpoint.size == 9)
            h.set(7)
            await #expect(throws: WriterWitness.Refused.self) { try await w.check(c) }
            let k = try w.kept()
            #expect(k?.checkpoint.size == 9, "a refused history must leave the kept checkpoint as it was")
            h.set(0)
            let e = await #expect(throws: WriterWitness.Refused.self) { try await w.check(c) }
            #expect(e?.description.contains("ROLLBACK") == true)
        }
    }

    /// A writer that followed a key succession (format-spec §8.8), shown a log that carries
    /// none, is shown another history of the log's keys: refused, even while the old key's
    /// grace would still check the checkpoint.
    @Test func aLogThatDropsTheKeySuccessionsTheWriterFollowedIsRefused() async throws {
        try await withLog { h, c, w in
            let next = try NoteSigner.generate(name: h.signer.name)
            let s = try KeySuccession.sign(old: h.signer, new: next, handover: 1, grace: 1000)
            try Data(try JSONEncoder().encode([s.note])).write(to: URL(fileURLWithPath: w.path + ".keys"))
            defer { try? FileManager.default.removeItem(atPath: w.path + ".keys") }
            h.set(5)
            let e = await #expect(throws: WriterWitness.Refused.self) { try await w.check(c) }
            #expect(e?.description.contains("FORK") == true, "\(e.map { "\($0)" } ?? "")")
        }
    }

    @Test func aForkOfTheSameSizeOrLargerIsRefused() async throws {
        try await withLog { h, c, w in
            h.set(6)
            let r3 = try await w.check(c)
            #expect(r3.kept?.checkpoint.size == 6)
            h.set(6, fork: true)
            await #expect(throws: WriterWitness.Refused.self) { try await w.check(c) }
            h.set(8)
            let r4 = try await w.check(c)
            #expect(r4.kept?.checkpoint.size == 8)
            h.set(11, fork: true)
            let r5 = try await w.check(c)
            #expect(r5.kept?.checkpoint.size == 11, "a history that extends the kept one is kept")
            // Entry 10 is not the one the kept history holds: a fork below the kept size.
            h.set(12)
            await #expect(throws: WriterWitness.Refused.self) { try await w.check(c) }
            let k = try w.kept()
            #expect(k?.checkpoint.size == 11)
        }
    }

    @Test func appendedEntriesMustBeCovered() async throws {
        try await withLog { h, c, w in
            h.set(3)
            let e = await #expect(throws: WriterWitness.Refused.self) { try await w.check(c, atLeast: 4) }
            #expect(e?.description.contains("not covered") == true)
        }
    }
}
