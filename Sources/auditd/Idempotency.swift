import ChainIndex
import Foundation
import SegmentStore

/// Remembers (writer uid, org, idempotency key) → receipt for a window, so a retried entry gets the
/// original ack instead of a second entry. Concurrent duplicates wait for the first. Rebuilt
/// from the log at start, so the window spans restarts.
final class IdempotencyCache: @unchecked Sendable {
    typealias Waiter = @Sendable (Result<Receipt, Error>) -> Void

    enum Lookup {
        /// First time: the caller appends and must call `complete` or `fail`.
        case reserved
        /// Already in the log.
        case done(Receipt)
        /// Being appended by another request; `waiter` will be called.
        case waiting
    }

    private enum State {
        case pending([Waiter])
        case done(Receipt, Date)
    }

    private let lock = NSLock()
    private var map: [String: State] = [:]
    let window: TimeInterval
    private var ready = false
    private var whenReady: [@Sendable () -> Void] = []

    /// True once the keys of the window have been re-read from the log.
    var isReady: Bool { lock.withLock { ready } }

    /// Runs `f` once the cache is ready (at once if it is). Keyed appends wait here after a
    /// restart, so a retry can never slip past a key that is still being re-read.
    func onReady(_ f: @escaping @Sendable () -> Void) {
        let now: Bool = lock.withLock {
            if ready { return true }
            whenReady.append(f)
            return false
        }
        if now { f() }
    }

    func markReady() {
        let fs: [@Sendable () -> Void] = lock.withLock {
            ready = true
            defer { whenReady.removeAll() }
            return whenReady
        }
        for f in fs { f() }
    }

    init(window: TimeInterval) { self.window = window }

    /// The window's key: a writer's idempotency key names an entry within one org, so the same
    /// key sent for another org is another entry (never acked with the first org's receipt).
    static func key(uid: UInt32, org: String, key: String) -> String { "\(uid)\u{0}\(org)\u{0}\(key)" }

    func lookup(_ k: String, waiter: @escaping Waiter) -> Lookup {
        lock.withLock {
            switch map[k] {
            case .done(let r, let t) where Date().timeIntervalSince(t) < window: return .done(r)
            case .pending(var ws):
                ws.append(waiter)
                map[k] = .pending(ws)
                return .waiting
            default:
                map[k] = .pending([])
                return .reserved
            }
        }
    }

    func complete(_ k: String, _ r: Receipt) {
        let ws: [Waiter] = lock.withLock {
            defer { map[k] = .done(r, Date()) }
            if case .pending(let ws) = map[k] { return ws }
            return []
        }
        for w in ws { w(.success(r)) }
    }

    func fail(_ k: String, _ e: Error) {
        let ws: [Waiter] = lock.withLock {
            defer { map[k] = nil }
            if case .pending(let ws) = map[k] { return ws }
            return []
        }
        for w in ws { w(.failure(e)) }
    }

    func seed(_ k: String, _ r: Receipt, at t: Date) {
        lock.withLock { if map[k] == nil { map[k] = .done(r, t) } }
    }

    /// Drops keys older than the window.
    func sweep() {
        let now = Date()
        lock.withLock {
            map = map.filter {
                if case .done(_, let t) = $0.value { return now.timeIntervalSince(t) < window }
                return true
            }
        }
    }

    /// Re-reads the entries received within the window (newest segments first) and remembers
    /// their keys. Returns how many keys were found.
    func rebuild(from ledger: Ledger) throws -> Int {
        let cutoff = Int64((Date().timeIntervalSince1970 - window) * 1000)
        var found = 0
        for info in ledger.store.segments().reversed() where info.endSeq > info.firstSeq {
            var newest: Int64 = .min
            try ledger.store.scan(from: info.firstSeq, to: min(info.endSeq, ledger.size)) { rec in
                guard let p = try? RecordPayload(bytes: rec.payload) else { return true }
                if let t = CanonicalScan.topLevelString(p.content, key: "received_at").flatMap(Timestamp.parse) { newest = max(newest, t) }
                guard CanonicalScan.topLevelString(p.content, key: "idempotency_key") != nil,
                      let v = try? Entry.decodeStored(p.content), let key = v["idempotency_key"]?.stringValue,
                      let org = v["org"]?.stringValue, case .int(let uid)? = v["writer"]?["uid"], let t = v["received_at"]?.stringValue.flatMap(Timestamp.parse), t >= cutoff,
                      let hash = try? ledger.tree.leaf(rec.seq)
                else { return true }
                seed(Self.key(uid: UInt32(truncatingIfNeeded: uid), org: org, key: key), Receipt(seq: rec.seq, hash: hash, orgSeq: p.orgSeq),
                     at: Date(timeIntervalSince1970: Double(t) / 1000))
                found += 1
                return true
            }
            if newest < cutoff { break }
        }
        return found
    }
}
