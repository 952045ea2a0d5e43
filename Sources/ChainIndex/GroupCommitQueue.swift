import AuditBase
import Foundation

/// Group commit: callers on any thread submit items; one dedicated thread takes everything
/// pending, runs `body` once for the whole group (one write, one fdatasync), and hands each
/// caller its results. Under load callers share a sync.
///
/// A caller with one item that finds the queue idle (nothing pending, no group or `afterAcks`
/// running, the last group single) may run `body` itself, on its own thread: a lone writer's
/// entry then costs one write and one fdatasync, without waking the commit thread and waiting
/// to be woken back. The `afterAcks` of such a group runs there too, once the caller has its
/// results. `body` and `afterAcks` never run twice at once (`busy`).
///
/// It lives with the ledger, its one user: in the same module its generic code is
/// specialized for the ledger's operations (across modules each call looked up type
/// metadata: about 4 % of a lone writer's samples outside its fdatasync).
///
/// `body` gets the items of every pending request concatenated (or, for a queue made with
/// `batches`, each request's array in turn), and must return exactly one result per item in
/// the same order. If it throws, every request in that group fails.
/// `afterAcks`, if given, runs once every caller of the group has its results, before the
/// next group: work that follows a commit without delaying its callers.
///
/// The thread holds the queue's state, not the queue: an owner that lets go without
/// `shutdown` (a start that failed after the log opened) stops it, and it ends once what was
/// submitted is committed.
public final class GroupCommitQueue<Item: Sendable, Output: Sendable>: Sendable {
    private let core: GroupCommitCore<Item, Output>

    /// A queue whose groups hold at most `maxGroup` items (a single larger request still
    /// goes through whole). The thread starts at once.
    public convenience init(
        name: String, maxGroup: Int = 8192, body: @escaping ([Item]) throws -> [Output],
        afterAcks: (() -> Void)? = nil
    ) {
        self.init(
            name: name, maxGroup: maxGroup, joined: { try body($0.count == 1 ? $0[0] : Array($0.joined())) },
            afterAcks: afterAcks)
    }

    /// As `init(name:maxGroup:body:afterAcks:)`, with `body` given the group as the requests'
    /// own arrays, in order, instead of one array of them all: joining them copies every item
    /// (a retain and a release of what each holds). The arrays are handed over: nothing else
    /// holds them, so `body` may take each item out of its array without copying it.
    public static func batches(
        name: String, maxGroup: Int = 8192, body: @escaping (consuming [[Item]]) throws -> [Output],
        afterAcks: (() -> Void)? = nil
    ) -> GroupCommitQueue {
        GroupCommitQueue(name: name, maxGroup: maxGroup, joined: body, afterAcks: afterAcks)
    }

    private init(
        name: String, maxGroup: Int, joined body: @escaping (consuming [[Item]]) throws -> [Output],
        afterAcks: (() -> Void)?
    ) {
        let core = GroupCommitCore(maxGroup: maxGroup, body: body, afterAcks: afterAcks)
        self.core = core
        namedThread(name, stackSize: 1 << 20) { core.run() }.start()
    }

    deinit { core.stop() }

    /// Submits `items`; `done` is called once they are committed: on the commit thread, or,
    /// with `inline`, a single item and an idle queue whose last group was single too, on this
    /// thread before `submit` returns. Only a caller that holds no lock `body` or `afterAcks`
    /// may take, and that has nothing better to do meanwhile, passes `inline` (a lone
    /// writer's entry); the group's `afterAcks` then runs here too, after `done`. The results
    /// are `items`' part of the group's, not a copy: a group of many single-item requests
    /// allocates nothing per request.
    public func submit(
        _ items: consuming [Item], inline: Bool = false,
        done: @escaping @Sendable (Result<ArraySlice<Output>, Error>) -> Void
    ) {
        core.submit(items, inline: inline, done: done)
    }

    /// Submits `items` and waits for them to be committed.
    public func submit(_ items: consuming [Item]) async throws -> [Output] {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<[Output], Error>) in
            // Taken out of the captured variable, so that the queue holds the only reference.
            var handed: [Item] = []
            swap(&handed, &items)
            core.submit(handed, inline: false) { c.resume(with: $0.map { Array($0) }) }
        }
    }

    /// Submits `items` and blocks this thread until they are committed (`inline` as in
    /// `submit(_:inline:done:)`).
    public func submitAndWait(_ items: consuming [Item], inline: Bool = false) throws -> [Output] {
        let box = ResultBox<[Output]>()
        core.submit(items, inline: inline) { box.set($0.map { Array($0) }) }
        return try box.wait()
    }

    /// Commits what is pending, then stops the thread; later submissions fail.
    public func shutdown() { core.shutdown() }
}

/// A `GroupCommitQueue`'s state and its thread's loop.
private final class GroupCommitCore<Item: Sendable, Output: Sendable>: @unchecked Sendable {
    private struct Request {
        var items: [Item]
        var done: @Sendable (Result<ArraySlice<Output>, Error>) -> Void
    }

    private let cond = NSCondition()
    private var pending: [Request] = []
    /// The last group's array, emptied, kept for its capacity: taking a whole queue swaps the
    /// two instead of copying requests (this type is generic, and is not specialized in the
    /// module that uses it: each copy or allocation here also looks up type metadata).
    private var spare: [Request] = []
    private var stopping = false
    private var finished = false
    /// `body` or `afterAcks` is running, on the commit thread or a caller's.
    private var busy = false
    /// Items in the last group: more than one says callers are arriving together, and then
    /// they are served by the commit thread alone, in groups, until a group is single again
    /// (a caller that committed on its own thread would spend one fdatasync on one item).
    private var lastGroup = 0
    private let maxGroup: Int
    private let body: (consuming [[Item]]) throws -> [Output]
    private let afterAcks: (() -> Void)?
    init(maxGroup: Int, body: @escaping (consuming [[Item]]) throws -> [Output], afterAcks: (() -> Void)?) {
        self.maxGroup = maxGroup
        self.body = body
        self.afterAcks = afterAcks
    }

    /// As `GroupCommitQueue.submit(_:inline:done:)`.
    func submit(
        _ items: consuming [Item], inline: Bool, done: @escaping @Sendable (Result<ArraySlice<Output>, Error>) -> Void
    ) {
        cond.lock()
        if stopping {
            cond.unlock()
            done(.failure(GroupCommitStopped()))
            return
        }
        if inline && !busy && pending.isEmpty && lastGroup <= 1 && items.count <= 1 {
            busy = true
            lastGroup = items.count
            cond.unlock()
            // Handed over, not captured by a closure: a captured array is shared, and `body`
            // taking an item out of it would copy the whole array first.
            let batch = [items]
            let result: Result<ArraySlice<Output>, Error>
            do { result = .success(try body(consume batch)[...]) } catch { result = .failure(error) }
            // The caller's ack first, then the work that follows it, here: the writer reads
            // its ack meanwhile (that work used to open the next group, in front of the
            // writer's next entry), and no thread switch to the commit thread is spent on it.
            done(result)
            afterAcks?()
            cond.lock()
            busy = false
            // Callers that queued meanwhile, or a `shutdown`, wait for the commit thread.
            if !pending.isEmpty || stopping { cond.broadcast() }
            cond.unlock()
            return
        }
        pending.append(Request(items: items, done: done))
        cond.signal()
        cond.unlock()
    }

    /// Commits what is pending, then stops the thread; later submissions fail.
    func shutdown() {
        cond.lock()
        stopping = true
        cond.broadcast()
        while !finished { cond.wait() }
        cond.unlock()
    }

    /// As `shutdown`, without waiting: the thread ends once what is pending is committed.
    func stop() {
        cond.lock()
        stopping = true
        cond.broadcast()
        cond.unlock()
    }

    func run() {
        while true {
            cond.lock()
            while busy || (pending.isEmpty && !stopping) { cond.wait() }
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
            var group: [Request]
            if k == pending.count {
                group = pending
                pending = spare
                spare = []
            } else {
                group = Array(pending[..<k])
                pending.removeFirst(k)
            }
            lastGroup = n
            busy = true
            cond.unlock()

            do {
                // A closure, not `\.items`: a key path in this generic type is built anew at
                // run time on every call (4 % of the commit thread's time with small groups).
                // The requests' arrays handed over, each left empty: `body` then holds the only
                // reference to each, and taking items out of them copies nothing.
                var batches: [[Item]] = []
                batches.reserveCapacity(group.count)
                var counts: [Int] = []
                counts.reserveCapacity(group.count)
                for k in group.indices {
                    counts.append(group[k].items.count)
                    batches.append(group[k].items)
                    group[k].items = []
                }
                let out = try body(consume batches)
                var i = 0
                for (r, count) in zip(group, counts) {
                    let end = min(out.count, i + count)
                    r.done(.success(out[min(i, end)..<end]))
                    i += count
                }
            } catch {
                for r in group { r.done(.failure(error)) }
            }
            group.removeAll(keepingCapacity: true)
            afterAcks?()
            cond.lock()
            busy = false
            if spare.capacity < group.capacity { spare = group }
            cond.unlock()
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
