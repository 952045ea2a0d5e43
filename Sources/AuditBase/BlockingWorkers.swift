import Foundation

/// A fixed number of threads of their own for jobs that block (a request waiting for its
/// answer). Such jobs must not run on Dispatch's shared pool: on Linux it has about as many
/// threads as cores and adds more only after a delay, so a few blocked jobs starve everything
/// else that needs it, the completion of their own requests included (measured: 2.4 s
/// replication stalls on a 2-core machine, README "Replication into the bucket").
public final class BlockingWorkers: @unchecked Sendable {
    private let cond = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var stopping = false

    /// Starts `count` threads named `name`.
    public init(name: String, count: Int) {
        for i in 0..<max(1, count) {
            // Linux keeps 15 bytes of a thread's name.
            namedThread(String("\(name)-\(i)".suffix(15))) { [self] in work() }.start()
        }
    }

    /// Runs `job` on the first free thread; after `shutdown`, drops it (a thread still
    /// finishing the jobs queued before would otherwise run it).
    public func async(_ job: @escaping @Sendable () -> Void) {
        cond.withLock {
            guard !stopping else { return }
            jobs.append(job)
            cond.signal()
        }
    }

    /// The threads end once the jobs queued so far have run; later jobs are dropped.
    public func shutdown() {
        cond.withLock {
            stopping = true
            cond.broadcast()
        }
    }

    /// Runs `body(0..<count)` on `count` threads of their own and returns when all are done:
    /// `DispatchQueue.concurrentPerform` for bodies that block.
    public static func perform(_ count: Int, name: String, _ body: @escaping @Sendable (Int) -> Void) {
        let left = NSCondition()
        nonisolated(unsafe) var running = count
        for i in 0..<count {
            namedThread(String("\(name)-\(i)".suffix(15))) {
                body(i)
                left.withLock {
                    running -= 1
                    left.signal()
                }
            }.start()
        }
        left.withLock { while running > 0 { left.wait() } }
    }

    /// Runs `body(0..<count)`, the first on the calling thread and the others on threads of
    /// their own at the caller's nice value, and returns when all are done: the
    /// `concurrentPerform` of background work in a daemon. Dispatch's shared pool is also the
    /// one that runs the daemon's async tasks (read-port requests): a verification pass that
    /// fanned out on it held requests up behind its batches (org pages' p99 10-14 ms during a
    /// pass, 2-5 ms otherwise, 10M entries), at nice 0 whatever the pass's own priority.
    public static func fanOut(_ count: Int, name: String, _ body: @escaping @Sendable (Int) -> Void) {
        guard count > 1 else {
            if count == 1 { body(0) }
            return
        }
        let nice = ThreadPriority.current()
        let left = NSCondition()
        nonisolated(unsafe) var running = count - 1
        for i in 1..<count {
            namedThread(String("\(name)-\(i)".suffix(15)), nice: nice, stackSize: 1 << 20) {
                body(i)
                left.withLock {
                    running -= 1
                    left.signal()
                }
            }.start()
        }
        body(0)
        left.withLock { while running > 0 { left.wait() } }
    }

    private func work() {
        while true {
            cond.lock()
            while head == jobs.count && !stopping { cond.wait() }
            if head == jobs.count {
                cond.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head > 1024 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            cond.unlock()
            job()
        }
    }
}
