import Foundation

/// A thread that runs `body` every `interval` seconds until stopped, at nice value `nice`.
public final class BackgroundLoop: @unchecked Sendable {
    private let cond = NSCondition()
    private var stopping = false
    private var stopped = false

    /// Starts the thread; the first run is `interval` after now.
    public init(name: String, interval: TimeInterval, nice: Int32 = 0, body: @escaping @Sendable () -> Void) {
        let t = namedThread(name, nice: nice) { [self] in
            while true {
                cond.lock()
                if !stopping { cond.wait(until: Date().addingTimeInterval(interval)) }
                if stopping {
                    stopped = true
                    cond.broadcast()
                    cond.unlock()
                    return
                }
                cond.unlock()
                body()
            }
        }
        t.start()
    }

    /// Stops the loop, waiting for a run in progress to end.
    public func stop() {
        cond.lock()
        stopping = true
        cond.broadcast()
        while !stopped { cond.wait() }
        cond.unlock()
    }
}
