import AuditBase
import ChainIndex
import Foundation
import Testing

/// The fast lane of `GroupCommitQueue`: a caller that finds it idle commits on its own thread,
/// and nothing else about the queue changes (one group at a time, `afterAcks` before the next
/// group, `shutdown` after everything submitted).
@Suite struct GroupCommitInlineTests {
    /// What ran, in order, as the threads saw it.
    final class Trace: @unchecked Sendable {
        private let lock = NSLock()
        private var events: [String] = []
        func add(_ e: String) { lock.withLock { events.append(e) } }
        var all: [String] { lock.withLock { events } }
    }

    /// A thread's number, set once.
    final class Box: @unchecked Sendable {
        private let lock = NSLock()
        private var v: UInt = 0
        func set(_ x: UInt) { lock.withLock { v = x } }
        var value: UInt { lock.withLock { v } }
    }

    /// A one-shot gate a thread can wait on.
    final class Gate: @unchecked Sendable {
        private let cond = NSCondition()
        private var open = false
        func release() {
            cond.lock()
            open = true
            cond.broadcast()
            cond.unlock()
        }
        /// False if it stayed shut for 30 s.
        func wait() -> Bool {
            cond.lock()
            defer { cond.unlock() }
            let deadline = Date().addingTimeInterval(30)
            while !open { if !cond.wait(until: deadline) { return open } }
            return true
        }
    }

    /// This thread, as a number (Foundation's `Thread.name` is not reliable on Linux).
    static func threadID() -> UInt { UInt(bitPattern: Int(bitPattern: UInt(pthread_self()))) }

    @Test func anIdleQueueCommitsOnTheCallersThreadWhenItAsks() throws {
        let q = GroupCommitQueue<Int, String>(name: "commit-thread") { items in items.map { _ in "\(Self.threadID())" }
        }
        let caller = "\(Self.threadID())"
        // `done` runs before `submit` returns: the caller's own thread did the work.
        let ran = Trace()
        q.submit([1], inline: true) { r in ran.add((try? r.get().first) ?? "failed") }
        #expect(ran.all == [caller])
        #expect(try q.submitAndWait([2], inline: true) == [caller])
        let gate = Gate()
        q.submit([3]) { r in
            ran.add((try? r.get().first) ?? "failed")
            gate.release()
        }
        #expect(gate.wait())
        #expect(ran.all.count == 2 && ran.all.last != caller && ran.all.last != "failed", "\(ran.all)")
        q.shutdown()
    }

    /// An inline group's ack comes first, then the work that follows it, both on the caller's
    /// thread before `submit` returns: the writer reads its ack while that work runs, and its
    /// next entry does not wait for it.
    @Test func anInlineGroupsAfterAcksRunsOnTheCallersThreadAfterItsAck() throws {
        let trace = Trace()
        let q = GroupCommitQueue<Int, Int>(
            name: "commit-thread", body: { items in items },
            afterAcks: { trace.add("afterAcks on \(Self.threadID())") })
        let caller = Self.threadID()
        q.submit([1], inline: true) { _ in trace.add("done on \(Self.threadID())") }
        #expect(trace.all == ["done on \(caller)", "afterAcks on \(caller)"])
        q.shutdown()
    }

    /// A caller that arrives while another commits on its own thread queues; the commit thread
    /// serves it once that group is done, after the group's `afterAcks`.
    @Test func aCallerBehindAnInlineGroupWaitsForItAndItsAfterAcks() throws {
        let trace = Trace()
        let inside = Gate()
        let proceed = Gate()
        let writerA = Box()
        let q = GroupCommitQueue<String, String>(
            name: "commit-thread",
            body: { items in
                if items == ["A"] {
                    inside.release()
                    _ = proceed.wait()
                }
                trace.add(
                    "body \(items.joined()) on \(Self.threadID() == writerA.value ? "writer-a" : "another thread")")
                return items
            },
            afterAcks: { trace.add("afterAcks") })
        let first = Gate()
        let a = Thread {
            writerA.set(Self.threadID())
            q.submit(["A"], inline: true) { _ in trace.add("done A") }
            first.release()
        }
        a.start()
        #expect(inside.wait())
        let second = Gate()
        q.submit(["B"], inline: true) { _ in
            trace.add("done B")
            second.release()
        }
        proceed.release()
        #expect(first.wait())
        #expect(second.wait())
        q.shutdown()
        let events = trace.all
        #expect(events.first == "body A on writer-a")
        #expect(events.contains("body B on another thread"), "\(events)")
        // A's afterAcks ran before B's group, and B's after it.
        let afterA = try #require(events.firstIndex(of: "afterAcks"))
        let bodyB = try #require(events.firstIndex(of: "body B on another thread"))
        #expect(afterA < bodyB, "\(events)")
        #expect(try #require(events.lastIndex(of: "afterAcks")) > bodyB, "\(events)")
    }

    /// `shutdown` during a caller's own commit returns only once it is done, and the
    /// `afterAcks` it left has run.
    @Test func shutdownWaitsForACallersCommit() throws {
        let trace = Trace()
        let inside = Gate()
        let proceed = Gate()
        let q = GroupCommitQueue<Int, Int>(
            name: "commit-thread",
            body: { items in
                inside.release()
                _ = proceed.wait()
                trace.add("body")
                return items
            },
            afterAcks: { trace.add("afterAcks") })
        let writer = Thread { q.submit([1], inline: true) { _ in trace.add("done") } }
        writer.start()
        #expect(inside.wait())
        let stopped = Gate()
        let stopper = Thread {
            q.shutdown()
            trace.add("shut down")
            stopped.release()
        }
        stopper.start()
        // The commit cannot end before it is let go, so neither can the shutdown.
        Thread.sleep(forTimeInterval: 0.05)
        #expect(!trace.all.contains("shut down"))
        proceed.release()
        #expect(stopped.wait())
        let events = trace.all
        let shut = try #require(events.firstIndex(of: "shut down"))
        #expect(try #require(events.firstIndex(of: "body")) < shut, "\(events)")
        #expect(try #require(events.firstIndex(of: "afterAcks")) < shut, "\(events)")
        #expect(throws: GroupCommitStopped.self) { try q.submitAndWait([2]) }
    }

    /// A `batches` queue (each item's result is ten times it) whose first group, `[0]`, is held
    /// on the commit thread while `requests` are submitted behind it; then let go. Returns
    /// the groups its body saw and each request's results, by index.
    static func groupsBehindAHeldGroup(
        _ requests: [[Int]], maxGroup: Int = 8192
    ) -> (queue: GroupCommitQueue<Int, Int>, groups: [[[Int]]], results: [Int: [Int]]) {
        let inside = Gate()
        let proceed = Gate()
        let seen = Locked<[[[Int]]]>([])
        let q = GroupCommitQueue<Int, Int>.batches(name: "commit-thread", maxGroup: maxGroup) { batches in
            seen.mutate { $0.append(batches) }
            if batches.joined().contains(0) {
                inside.release()
                _ = proceed.wait()
            }
            return batches.joined().map { $0 * 10 }
        }
        let first = Gate()
        q.submit([0]) { _ in first.release() }
        #expect(inside.wait())
        let results = Locked<[Int: [Int]]>([:])
        let answered = Gate()
        for (k, items) in requests.enumerated() {
            q.submit(items) { r in
                results.mutate { $0[k] = (try? r.get()).map { Array($0) } ?? [] }
                if results.value.count == requests.count { answered.release() }
            }
        }
        proceed.release()
        #expect(first.wait())
        #expect(answered.wait())
        return (q, seen.value, results.value)
    }

    /// A queue made with `batches` hands its body each request's own array, in the order the
    /// requests came, and every caller gets the results of its own items.
    @Test func aBatchesQueueSeesEachRequestApart() throws {
        // Three requests wait while the first group commits: the next group holds all three.
        let (q, groups, results) = Self.groupsBehindAHeldGroup([[1, 2], [3], [4, 5, 6]])
        #expect(groups == [[[0]], [[1, 2], [3], [4, 5, 6]]])
        #expect(results == [0: [10, 20], 1: [30], 2: [40, 50, 60]])
        q.shutdown()
    }

    /// Requests that wait while a group commits are taken up to `maxGroup` items a group (a
    /// larger one alone still goes whole), the rest in the next, three groups in a row; each
    /// caller gets its own items' results.
    @Test func groupsStopAtMaxGroupAndTheRestFollow() throws {
        let (q, groups, results) = Self.groupsBehindAHeldGroup(
            [[1, 2], [3, 4], [5], [6, 7, 8, 9, 10], [11]], maxGroup: 4)
        #expect(groups == [[[0]], [[1, 2], [3, 4]], [[5]], [[6, 7, 8, 9, 10]], [[11]]])
        #expect(results == [0: [10, 20], 1: [30, 40], 2: [50], 3: [60, 70, 80, 90, 100], 4: [110]])
        // And the queue still takes a whole waiting queue at once afterwards.
        #expect(try q.submitAndWait([12, 13]) == [120, 130])
        q.shutdown()
    }
}
