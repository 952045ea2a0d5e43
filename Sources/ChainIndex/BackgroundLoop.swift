import AuditBase
import AuditEntries
import AuditIndex
import Foundation
import LogTree
import SegmentStore

/// A thread that runs `body` every `interval` seconds until stopped, at nice value `nice`.
final class BackgroundLoop: @unchecked Sendable {
    private let cond = NSCondition()
    private var stopping = false
    private var stopped = false

    init(name: String, interval: TimeInterval, nice: Int32 = 0, body: @escaping @Sendable () -> Void) {
        let t = Thread { [self] in
            if nice != 0 { ThreadPriority.setCurrent(nice: nice) }
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
        t.name = name
        t.start()
    }

    func stop() {
        cond.lock()
        stopping = true
        cond.broadcast()
        while !stopped { cond.wait() }
        cond.unlock()
    }
}
