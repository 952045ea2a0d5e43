import AuditBase
import Foundation
import ServiceLifecycle

/// A flag set from another thread.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

/// Runs `body` on a thread of its own at nice value `nice` (reading and hashing for a while must
/// not hold the shared concurrency pool, nor the writers' CPU), and waits for it. The flag it
/// is given is set when the daemon starts to stop (or the task is cancelled): `body` looks at
/// it between steps and returns early, so a long pass never holds up a shutdown.
func onBackgroundThread(name: String, nice: Int32, _ body: @escaping @Sendable (StopFlag) -> Void) async {
    let stopping = StopFlag()
    await withGracefulShutdownHandler {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                let t = Thread {
                    ThreadPriority.setCurrent(nice: nice)
                    body(stopping)
                    done.resume()
                }
                t.name = name
                t.start()
            }
        } onCancel: {
            stopping.set()
        }
    } onGracefulShutdown: {
        stopping.set()
    }
}
