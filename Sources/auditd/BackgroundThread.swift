import AuditBase
import Foundation
import ServiceLifecycle

/// A flag set from another thread, and waited on.
final class StopFlag: @unchecked Sendable {
    private let cond = NSCondition()
    private var value = false
    var isSet: Bool { cond.withLock { value } }
    func set() {
        cond.withLock {
            value = true
            cond.broadcast()
        }
    }
    /// Waits `seconds`, less if the flag is set meanwhile; whether it is set.
    func wait(seconds: Double) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        let until = Date(timeIntervalSinceNow: seconds)
        while !value && cond.wait(until: until) {}
        return value
    }
}

/// Runs `body` after `first`, then `interval` after each run ends, on one thread of its own at
/// nice value `nice` (reading and hashing for a while must not hold the shared concurrency
/// pool, nor the writers' CPU), until the daemon starts to stop (or the task is cancelled):
/// then the flag `body` is given is set, and `body` looks at it between steps and returns
/// early, so a long pass never holds up a shutdown. Returns when the thread has.
///
/// One thread and one wait for the service's life. With a new thread and a new wait per run,
/// twice in a full test run the archiver ran no more after its first pass, its service
/// waiting with no thread of its own left (the cause was not found; with one thread there is
/// no per-run start or resumption to lose).
func onBackgroundThread(
    every interval: Duration, first: Duration = .zero, name: String, nice: Int32,
    _ body: @escaping @Sendable (StopFlag) -> Void
) async {
    let stopping = StopFlag()
    await withTaskCancellationOrGracefulShutdownHandler {
        await withCheckedContinuation { (exited: CheckedContinuation<Void, Never>) in
            namedThread(name, nice: nice) {
                var pause = first
                while !stopping.wait(seconds: pause.inSeconds) {
                    body(stopping)
                    pause = interval
                }
                exited.resume()
            }.start()
        }
    } onCancelOrGracefulShutdown: {
        stopping.set()
    }
}
