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
        // Each body waits until all eight have started: only eight threads at once can pass.
        // (Counting distinct `Thread` objects would not do: a finished one's address is reused.)
        let barrier = NSCondition()
        nonisolated(unsafe) var arrived = 0
        let together = Locked(0)
        BlockingWorkers.perform(8, name: "test-perform") { i in
            Self.blockOnDispatch(Locked(0))
            seen.mutate { _ = $0.insert(i) }
            let all = barrier.withLock {
                arrived += 1
                barrier.broadcast()
                let deadline = Date().addingTimeInterval(60)
                while arrived < 8 && barrier.wait(until: deadline) {}
                return arrived == 8
            }
            if all { together.mutate { $0 += 1 } }
        }
        #expect(seen.value == Set(0..<8))
        #expect(together.value == 8, "bodies that saw all eight running at once")
    }

    /// `fanOut` runs every index once, the first on the calling thread, the rest on threads of
    /// their own at the caller's nice value (never on Dispatch's pool, which serves requests).
    @Test func aFanOutRunsEachIndexOnceAtItsCallersPriority() {
        let seen = Locked([Int: (nice: Int32, caller: Bool, pool: Bool)]())
        let finished = DispatchSemaphore(value: 0)
        let t = Thread {
            ThreadPriority.setCurrent(nice: 7)
            let caller = pthread_self()
            BlockingWorkers.fanOut(4, name: "test-fan") { i in
                let name = Thread.current.name ?? ""
                let pool = name.contains("com.apple.root")
                seen.mutate { $0[i] = (ThreadPriority.current(), pthread_equal(pthread_self(), caller) != 0, pool) }
            }
            finished.signal()
        }
        t.start()
        finished.wait()
        let s = seen.value
        #expect(s.keys.sorted() == [0, 1, 2, 3])
        #expect(s[0]?.caller == true && s.filter { $0.value.caller }.count == 1)
        #expect(s.values.allSatisfy { $0.nice == 7 && !$0.pool }, "\(s)")
    }
}
