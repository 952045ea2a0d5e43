import AuditBase
import Foundation

/// Prepared batches, from the thread that reads them to the one that checks them: at most
/// two wait, so memory stays bounded.
final class BatchPipe<Batch>: @unchecked Sendable {
    enum Item {
        case batch(Batch)
        case end
        case failed(Error)
    }
    private let cond = NSCondition()
    private var items: [Item] = []
    private var cancelled = false
    private var done = false

    /// Queues `item`; false once the checker stopped listening.
    func put(_ item: Item) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        while items.count >= 2 && !cancelled { cond.wait() }
        guard !cancelled else { return false }
        items.append(item)
        cond.broadcast()
        return true
    }

    /// The next item, waiting for it.
    func take() -> Item {
        cond.lock()
        defer { cond.unlock() }
        while items.isEmpty { cond.wait() }
        cond.broadcast()
        return items.removeFirst()
    }

    func producerDone() {
        cond.lock()
        done = true
        cond.broadcast()
        cond.unlock()
    }

    /// Stops the producer and waits until it has returned.
    func cancelAndJoin() {
        cond.lock()
        cancelled = true
        cond.broadcast()
        while !done { cond.wait() }
        items.removeAll()
        cond.unlock()
    }
}

/// Frees, on a thread of its own, what the checking thread is done with: a batch's records and
/// strings were allocated on the reading and preparing threads, and freeing them where they
/// were checked (glibc hands each block back to the arena it came from, under that arena's
/// lock) took half of the checking thread's time, the pipeline's slowest stage. At most four
/// wait: beyond that the caller frees its own, so memory stays bounded.
final class Disposal: @unchecked Sendable {
    private let cond = NSCondition()
    private var items: [Any] = []
    private var closed = false

    /// Starts the freeing thread, named `name`, at nice value `nice`.
    init(name: String, nice: Int32) {
        namedThread(name, nice: nice, stackSize: 1 << 20) { [self] in
            while true {
                cond.lock()
                while items.isEmpty && !closed { cond.wait() }
                var batch: [Any] = []
                swap(&batch, &items)
                let done = closed && batch.isEmpty
                cond.broadcast()
                cond.unlock()
                if done { return }
                batch.removeAll()  // here, on this thread: what they held is freed
            }
        }.start()
    }

    /// Hands `value` over to be freed; false (the caller keeps it) when four already wait.
    @discardableResult
    func drop(_ value: Any) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        guard items.count < 4, !closed else { return false }
        items.append(value)
        cond.signal()
        return true
    }

    /// Lets the thread end once it has freed what it holds.
    func close() {
        cond.lock()
        closed = true
        cond.broadcast()
        cond.unlock()
    }
}
