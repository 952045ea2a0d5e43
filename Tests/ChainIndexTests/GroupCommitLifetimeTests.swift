import ChainIndex
import Foundation
import Testing

/// A `GroupCommitQueue` whose owner lets go of it without `shutdown` (a log whose start failed
/// after it opened, a test's stand-in for a crash): its thread must neither read a freed queue
/// nor stay parked for the life of the process.
@Suite struct GroupCommitLifetimeTests {
    /// Threads of this process whose name (Linux keeps 15 bytes) is `name`.
    static func threads(named name: String) -> Int {
        let dir = "/proc/self/task"
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return tasks.filter { task in
            let comm = (try? String(contentsOfFile: "\(dir)/\(task)/comm", encoding: .utf8)) ?? ""
            return comm.trimmingCharacters(in: .whitespacesAndNewlines) == name
        }.count
    }

    /// Waits up to 20 s for no thread named `name` to be left; returns how many were left.
    static func waitForNoThreads(named name: String) -> Int {
        let deadline = Date().addingTimeInterval(20)
        var left = threads(named: name)
        while left > 0 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            left = threads(named: name)
        }
        return left
    }

    /// The daemon crashed this way in CI: its start failed (a bucket without Object Lock) just
    /// after the log opened, the log and its queue were freed, and the commit thread, not yet
    /// running, then read its queue through an unowned reference.
    @Test func queuesDroppedAtOnceNeitherCrashNorLeaveTheirThreads() {
        #expect(Self.threads(named: "gcq-dropped") == 0)
        for _ in 0..<300 {
            _ = GroupCommitQueue<Int, Int>(name: "gcq-dropped") { $0 }
        }
        let left = Self.waitForNoThreads(named: "gcq-dropped")
        #expect(left == 0, "\(left) of 300 commit threads still running after their queues were dropped")
    }

    /// What was submitted before the owner let go is still committed and answered.
    @Test func aDroppedQueueCommitsWhatWasSubmittedFirst() {
        let answered = NSCondition()
        nonisolated(unsafe) var results: [Result<ArraySlice<Int>, Error>] = []
        do {
            let q = GroupCommitQueue<Int, Int>(name: "gcq-drained") { items in
                Thread.sleep(forTimeInterval: 0.01)
                return items.map { $0 * 2 }
            }
            for i in 0..<20 {
                q.submit([i]) { r in
                    answered.lock()
                    results.append(r)
                    answered.broadcast()
                    answered.unlock()
                }
            }
        }
        answered.lock()
        let deadline = Date().addingTimeInterval(20)
        while results.count < 20 && answered.wait(until: deadline) {}
        let got = results
        answered.unlock()
        #expect(got.count == 20)
        #expect(got.compactMap { try? $0.get().first }.sorted() == (0..<20).map { $0 * 2 })
        #expect(Self.waitForNoThreads(named: "gcq-drained") == 0)
    }
}
