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
