import Foundation
import Hummingbird

/// Reads of one token run at most `limit` at a time (the rest wait their turn, first come
/// first served, at most `queue` of them): a client looping on costly scans (activity, text
/// search) takes its own share of the query pool, never every thread of it, so other orgs'
/// pages stay fast.
final class TokenGate: @unchecked Sendable {
    let limit: Int
    let queue: Int
    private let lock = NSLock()
    private var running: [String: Int] = [:]
    private var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]

    init(limit: Int = 2, queue: Int = 64) {
        self.limit = limit
        self.queue = queue
    }

    /// Runs `body` once one of `token`'s places is free.
    func run<T>(_ token: String, _ body: () async throws -> T) async throws -> T {
        try await enter(token)
        defer { leave(token) }
        return try await body()
    }

    private func enter(_ token: String) async throws {
        enum Admission { case now, wait, full }
        let first: Admission = lock.withLock {
            if running[token, default: 0] < limit {
                running[token, default: 0] += 1
                return .now
            }
            return (waiting[token]?.count ?? 0) >= queue ? .full : .wait
        }
        switch first {
        case .now: return
        case .full:
            throw HTTPError(
                .tooManyRequests, headers: [.retryAfter: "1"],
                message: "this token has \(queue) requests waiting already; wait for their answers")
        case .wait:
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now: Bool = lock.withLock {
                    if running[token, default: 0] < limit {
                        running[token, default: 0] += 1
                        return true
                    }
                    waiting[token, default: []].append(c)
                    return false
                }
                if now { c.resume() }
            }
        }
    }

    /// Frees a place: handed to the next waiter of the same token, if any.
    private func leave(_ token: String) {
        let next: CheckedContinuation<Void, Never>? = lock.withLock {
            if var w = waiting[token], !w.isEmpty {
                let c = w.removeFirst()
                waiting[token] = w.isEmpty ? nil : w
                return c
            }
            let n = (running[token] ?? 1) - 1
            running[token] = n > 0 ? n : nil
            return nil
        }
        next?.resume()
    }
}
