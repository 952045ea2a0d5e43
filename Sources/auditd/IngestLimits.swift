import Foundation
import NIOCore

/// Why reading from a writer is paused; reading resumes when no reason holds. The handler
/// asks the gate and carries out what it answers (pause or resume), nothing else.
struct ReadGate {
    enum Reason: Hashable {
        /// This connection has too many entries awaiting their ack.
        case inflight
        /// All connections together have too many.
        case inflightTotal
        /// The peer is not reading its replies (the channel is not writable).
        case unwritable
    }

    enum Action: Equatable {
        case pause, resume, none
    }

    private(set) var reasons: Set<Reason> = []

    /// Adds a reason; `.pause` when it is the first.
    mutating func hold(_ r: Reason) -> Action {
        let wasOpen = reasons.isEmpty
        reasons.insert(r)
        return wasOpen ? .pause : .none
    }

    /// Drops a reason; `.resume` when it was the last.
    mutating func release(_ r: Reason) -> Action {
        guard reasons.remove(r) != nil else { return .none }
        return reasons.isEmpty ? .resume : .none
    }
}

/// Entries accepted but not yet acknowledged, across connections: shutdown waits for zero,
/// and past `limit` connections pause reading until it falls to half.
final class InflightCounter: @unchecked Sendable {
    let limit: Int
    private let lock = NSLock()
    private var n = 0
    private var waiters: [@Sendable () -> Void] = []

    init(limit: Int = .max) { self.limit = limit }

    func add(_ k: Int) { lock.withLock { n += k } }

    func remove(_ k: Int) {
        let wake: [@Sendable () -> Void] = lock.withLock {
            n -= k
            guard n <= limit / 2, !waiters.isEmpty else { return [] }
            defer { waiters.removeAll() }
            return waiters
        }
        for w in wake { w() }
    }

    var value: Int { lock.withLock { n } }

    /// True when a connection should pause reading.
    var isOverLimit: Bool { lock.withLock { n >= limit } }

    /// Calls `f` once the count is at most half the limit (at once if it is).
    func whenBelowHalf(_ f: @escaping @Sendable () -> Void) {
        let now: Bool = lock.withLock {
            if n <= limit / 2 { return true }
            waiters.append(f)
            return false
        }
        if now { f() }
    }
}

/// Writer connections open now, capped.
final class ConnectionCounter: @unchecked Sendable {
    let limit: Int
    private let lock = NSLock()
    private var n = 0

    init(limit: Int) { self.limit = limit }

    /// Takes a place, or returns false when all are taken.
    func enter() -> Bool {
        lock.withLock {
            guard n < limit else { return false }
            n += 1
            return true
        }
    }

    func leave() { lock.withLock { n -= 1 } }

    var value: Int { lock.withLock { n } }
}
