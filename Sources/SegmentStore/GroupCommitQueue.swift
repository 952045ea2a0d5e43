import Foundation

/// Group commit: callers on any thread submit items; one dedicated thread takes everything
/// pending, runs `body` once for the whole group (one write, one fdatasync), and hands each
/// caller its results. A lone caller is served at once; under load callers share a sync.
///
/// `body` gets the items of every pending request concatenated, and must return exactly one
/// result per item in the same order. If it throws, every request in that group fails.
/// `afterAcks`, if given, runs on the same thread once every caller of the group has its
/// results, before the next group: work that follows a commit without delaying its callers.
public final class GroupCommitQueue<Item: Sendable, Output: Sendable>: @unchecked Sendable {
    private struct Request {
        var items: [Item]
        var done: @Sendable (Result<[Output], Error>) -> Void
    }

    private let cond = NSCondition()
    private var pending: [Request] = []
    private var stopping = false
    private var finished = false
    private let maxGroup: Int
    private let body: ([Item]) throws -> [Output]
    private let afterAcks: (() -> Void)?
    private var thread: Thread?

    /// A queue whose groups hold at most `maxGroup` items (a single larger request still
    /// goes through whole). The thread starts at once.
    public init(
        name: String, maxGroup: Int = 8192, body: @escaping ([Item]) throws -> [Output],
        afterAcks: (() -> Void)? = nil
    ) {
        self.maxGroup = maxGroup
        self.body = body
        self.afterAcks = afterAcks
        let t = Thread { [unowned self] in self.run() }
        t.name = name
        t.stackSize = 1 << 20
        thread = t
        t.start()
    }

    /// Submits `items`; `done` is called on the commit thread once they are committed.
    public func submit(_ items: [Item], done: @escaping @Sendable (Result<[Output], Error>) -> Void) {
        cond.lock()
        if stopping {
            cond.unlock()
            done(.failure(GroupCommitStopped()))
            return
        }
        pending.append(Request(items: items, done: done))
        cond.signal()
        cond.unlock()
    }

    /// Submits `items` and waits for them to be committed.
    public func submit(_ items: [Item]) async throws -> [Output] {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<[Output], Error>) in
            submit(items) { c.resume(with: $0) }
        }
    }

    /// Submits `items` and blocks this thread until they are committed.
    public func submitAndWait(_ items: [Item]) throws -> [Output] {
        let box = ResultBox<[Output]>()
        submit(items) { box.set($0) }
        return try box.wait()
    }

    /// Commits what is pending, then stops the thread; later submissions fail.
    public func shutdown() {
        cond.lock()
        stopping = true
        cond.signal()
        while !finished { cond.wait() }
        cond.unlock()
    }

    private func run() {
        while true {
            cond.lock()
            while pending.isEmpty && !stopping { cond.wait() }
            if pending.isEmpty && stopping {
                finished = true
                cond.broadcast()
                cond.unlock()
                return
            }
            // Take a prefix at once: removing requests one by one from the front is O(n) each.
            var n = 0
            var k = 0
            while k < pending.count, k == 0 || n + pending[k].items.count <= maxGroup {
                n += pending[k].items.count
                k += 1
            }
            let group = Array(pending[..<k])
            pending.removeFirst(k)
            cond.unlock()

            var all: [Item] = []
            all.reserveCapacity(n)
            for r in group { all.append(contentsOf: r.items) }
            do {
                let out = try body(all)
                var i = 0
                for r in group {
                    r.done(.success(Array(out[i..<min(out.count, i + r.items.count)])))
                    i += r.items.count
                }
            } catch {
                for r in group { r.done(.failure(error)) }
            }
            afterAcks?()
        }
    }
}

/// Submitted to a queue that is shutting down.
public struct GroupCommitStopped: Error, CustomStringConvertible {
    /// The error.
    public init() {}
    /// In words.
    public var description: String { "the log is shutting down; retry against the restarted service" }
}

final class ResultBox<T>: @unchecked Sendable {
    private let cond = NSCondition()
    private var value: Result<T, Error>?

    func set(_ r: Result<T, Error>) {
        cond.lock()
        value = r
        cond.signal()
        cond.unlock()
    }

    func wait() throws -> T {
        cond.lock()
        defer { cond.unlock() }
        while true {
            if let v = value { return try v.get() }
            cond.wait()
        }
    }
}
