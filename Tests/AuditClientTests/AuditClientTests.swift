import AuditClient
import AuditWire
import Foundation
import TestSupport
import Testing

/// The client library on its own, against a fake ingest socket that answers exactly as told.
@Suite struct AuditClientTests {
    @Test func acksAndErrorsReachTheirOwnRequestsWhateverTheOrder() async throws {
        // Every APPEND is answered, but in reverse order within each burst, and the body
        // "bad" with an ERROR: each caller still gets its own answer.
        let held = Held()
        let server = try FakeIngestSocket { f in
            guard f.type == FrameType.append.rawValue else { return [] }
            let reply: Frame =
                f.body == Array("bad".utf8)
                ? .error(id: f.id, code: .invalidEntry, message: "field 'org': is required")
                : .ack(
                    id: f.id, seq: f.id * 10, orgSeq: f.id, hash: Array(repeating: UInt8(f.id & 0xff), count: 32),
                    duplicate: false)
            return held.take(reply, release: 4)
        }
        defer { server.stop() }
        let c = try await AuditClient.connect(socketPath: server.path)
        let results = try await c.append(batch: ["a", "bad", "b", "c"].map { Array($0.utf8) })
        await c.close()
        #expect(results.count == 4)
        let acks = results.compactMap { try? $0.get() }
        #expect(acks.count == 3)
        #expect(
            acks.allSatisfy { $0.seq == $0.orgSeq * 10 && $0.hash == Array(repeating: UInt8($0.orgSeq), count: 32) })
        guard case .failure(let e) = results[1] else {
            Issue.record("the second entry should have been refused: \(results[1])")
            return
        }
        #expect(e.code == WireErrorCode.invalidEntry.rawValue && e.message == "field 'org': is required")
    }

    @Test func batchesInFlightTogetherEachGetTheirOwnAnswersInOrder() async throws {
        // A batch is answered by one future once its last reply is in: replies of three
        // batches, written together and answered in reverse order across all of them, must
        // still land in their own batch, in request order.
        let held = Held()
        let server = try FakeIngestSocket { f in
            guard f.type == FrameType.append.rawValue else { return [] }
            return held.take(
                .ack(
                    id: f.id, seq: UInt64(f.body.count), orgSeq: f.id, hash: Array(repeating: 7, count: 32),
                    duplicate: false),
                release: 9)
        }
        defer { server.stop() }
        let c = try await AuditClient.connect(socketPath: server.path)
        let results = try await withThrowingTaskGroup(of: (Int, [Result<Ack, WireError>]).self) { group in
            for b in 0..<3 {
                group.addTask {
                    // Bodies of lengths 3b+1...3b+3: each ack's seq says which entry it answers.
                    (
                        b,
                        try await c.append(
                            batch: (1...3).map { Array(repeating: UInt8(ascii: "x"), count: 3 * b + $0) })
                    )
                }
            }
            var out: [Int: [Result<Ack, WireError>]] = [:]
            for try await (b, r) in group { out[b] = r }
            return out
        }
        await c.close()
        for b in 0..<3 {
            #expect(try results[b]?.map { try $0.get().seq } == [1, 2, 3].map { UInt64(3 * b + $0) })
        }
    }

    @Test func aLogThatHangsUpMidBatchFailsTheBatch() async throws {
        // Two of three replies arrive, then the log hangs up: the batch throws, it does not
        // wait forever for the third or pass with what it has.
        let count = Counter()
        let server = try FakeIngestSocket { f in
            guard count.next() <= 2 else { return [] }
            return [.ack(id: f.id, seq: f.id, orgSeq: f.id, hash: Array(repeating: 0, count: 32), duplicate: false)]
        }
        let c = try await AuditClient.connect(socketPath: server.path)
        let pending = Task { try await c.append(batch: ["a", "b", "c"].map { Array($0.utf8) }) }
        try await Task.sleep(for: .milliseconds(200))
        server.stop()
        await #expect(throws: (any Error).self) { _ = try await pending.value }
        await c.close()
    }

    @Test func aLogThatHangsUpFailsEveryPendingRequest() async throws {
        let server = try FakeIngestSocket { _ in [] }
        let c = try await AuditClient.connect(socketPath: server.path)
        let pending = Task { try await c.append(Array("{}".utf8)) }
        try await Task.sleep(for: .milliseconds(100))
        server.stop()
        await #expect(throws: (any Error).self) { _ = try await pending.value }
        await c.close()
    }

    @Test func noLogAtThePathSaysSo() async throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-\(UUID()).sock").path
        await #expect(throws: (any Error).self) { _ = try await AuditClient.connect(socketPath: missing) }
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func next() -> Int {
            lock.withLock {
                n += 1
                return n
            }
        }
    }

    /// Holds replies until `release` have gathered, then hands them out newest first.
    final class Held: @unchecked Sendable {
        private let lock = NSLock()
        private var replies: [Frame] = []

        func take(_ f: Frame, release: Int) -> [Frame] {
            lock.withLock {
                replies.append(f)
                guard replies.count == release else { return [] }
                defer { replies = [] }
                return replies.reversed()
            }
        }
    }
}
