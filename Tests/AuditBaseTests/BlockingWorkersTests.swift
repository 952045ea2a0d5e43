import AuditBase
import Foundation
import Testing

/// `BlockingWorkers`: jobs that block their thread until an answer comes from elsewhere (as an
/// upload waits for URLSession's completion, delivered on Dispatch's pool) all run, each on a
/// thread of its own, and never hold up the pool their answers come from.
@Suite struct BlockingWorkersTests {
    /// A job that blocks until a Dispatch callback answers it.
    static func blockOnDispatch(_ done: Locked<Int>) {
        let answered = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { answered.signal() }
        answered.wait()
        done.mutate { $0 += 1 }
    }

    @Test func jobsThatBlockOnDispatchAllRunAndShutdownLetsQueuedOnesFinish() {
        let workers = BlockingWorkers(name: "test-workers", count: 4)
        let done = Locked(0)
        // More jobs than threads and than cores: each waits for an answer from Dispatch's pool.
        for _ in 0..<32 { workers.async { Self.blockOnDispatch(done) } }
        workers.shutdown()
        let deadline = Date().addingTimeInterval(60)
        while done.value < 32 && Date() < deadline { usleep(1000) }
        #expect(done.value == 32)
        // After shutdown, a new job is dropped (the threads have ended).
        workers.async { done.mutate { $0 += 100 } }
        usleep(50_000)
        #expect(done.value == 32)
    }

    @Test func performRunsEveryIndexOnItsOwnThreadAndWaitsForAll() {
        let seen = Locked(Set<Int>())
        let threads = Locked(Set<ObjectIdentifier>())
        BlockingWorkers.perform(8, name: "test-perform") { i in
            Self.blockOnDispatch(Locked(0))
            seen.mutate { _ = $0.insert(i) }
            threads.mutate { _ = $0.insert(ObjectIdentifier(Thread.current)) }
        }
        #expect(seen.value == Set(0..<8))
        #expect(threads.value.count == 8)
    }
}
