import AuditBase
import AuditEntries
import ChainIndex
import Foundation
import SegmentStore

/// Remembers (writer uid, org, idempotency key) → the entry it made, for a window, so a
/// retried entry gets the original ack instead of a second entry. Concurrent duplicates wait
/// for the first. Rebuilt from the log at start, so the window spans restarts.
///
/// Memory is bounded whatever the rate: a key is kept as 16 bytes of its SHA-256 with the
/// entry's seq and org position and the time (about 100 bytes in all), at most `maxKeys` of
/// them; past that the oldest go first, so at very high keyed rates the window is shorter
/// than configured (`maxKeys` / rate). The ack's hash is read back from the tree on a retry.
final class IdempotencyCache: @unchecked Sendable {
    typealias Waiter = @Sendable (Result<Receipt, Error>) -> Void

    /// A key: the first 16 bytes of SHA-256(uid ‖ 0 ‖ org ‖ 0 ‖ key).
    struct Key: Hashable, Sendable {
        let a: UInt64, b: UInt64
    }

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
        case done(seq: UInt64, orgSeq: UInt64, at: UInt32)
    }

    private let lock = NSLock()
    private var map: [Key: State] = [:]
    /// Keys in the order they were completed, for eviction; `head` is the oldest live one.
    private var order: [(Key, UInt32)] = []
    private var head = 0
    let window: TimeInterval
    let maxKeys: Int
    private let leaf: @Sendable (UInt64) -> Hash?
    private var ready = false
    private var whenReady: [@Sendable () -> Void] = []

    /// A cache for `window` seconds and at most `maxKeys` keys; `leaf` gives an entry's hash.
    init(window: TimeInterval, maxKeys: Int = 1_000_000, leaf: @escaping @Sendable (UInt64) -> Hash?) {
        self.window = window
        self.maxKeys = max(1, maxKeys)
        self.leaf = leaf
    }

    /// True once the keys of the window have been re-read from the log.
    var isReady: Bool { lock.withLock { ready } }

    /// Keys remembered now (completed or pending).
    var count: Int { lock.withLock { map.count } }

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

    /// The window's key: a writer's idempotency key names an entry within one org, so the same
    /// key sent for another org is another entry (never acked with the first org's receipt).
    static func key(uid: UInt32, org: String, key: String) -> Key {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4 + org.utf8.count + key.utf8.count + 2)
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: uid >> (8 * UInt32(i)))) }
        bytes.append(0)
        bytes += org.utf8
        bytes.append(0)
        bytes += key.utf8
        let h = SHA256.hash(bytes).bytes
        var a: UInt64 = 0
        var b: UInt64 = 0
        for i in 0..<8 {
            a = a << 8 | UInt64(h[i])
            b = b << 8 | UInt64(h[8 + i])
        }
        return Key(a: a, b: b)
    }

    static func now() -> UInt32 { UInt32(clamping: Int64(Date().timeIntervalSince1970)) }

    func lookup(_ k: Key, waiter: @escaping Waiter) -> Lookup {
        let found: (UInt64, UInt64)? = lock.withLock {
            switch map[k] {
            case .done(let seq, let orgSeq, let at) where Double(Self.now()) - Double(at) < window: return (seq, orgSeq)
            case .pending(var ws):
                ws.append(waiter)
                map[k] = .pending(ws)
                return (UInt64.max, 0)
            default:
                map[k] = .pending([])
                return nil
            }
        }
        guard let (seq, orgSeq) = found else { return .reserved }
        if seq == .max { return .waiting }
        guard let hash = leaf(seq) else {
            // The entry is not readable now (storage trouble): answer as a fresh append would.
            return .done(Receipt(seq: seq, hash: .zero, orgSeq: orgSeq))
        }
        return .done(Receipt(seq: seq, hash: hash, orgSeq: orgSeq))
    }

    func complete(_ k: Key, _ r: Receipt) {
        let ws: [Waiter] = lock.withLock {
            defer { remember(k, seq: r.seq, orgSeq: r.orgSeq, at: Self.now()) }
            if case .pending(let ws) = map[k] { return ws }
            return []
        }
        for w in ws { w(.success(r)) }
    }

    func fail(_ k: Key, _ e: Error) {
        let ws: [Waiter] = lock.withLock {
            defer { map[k] = nil }
            if case .pending(let ws) = map[k] { return ws }
            return []
        }
        for w in ws { w(.failure(e)) }
    }

    func seed(_ k: Key, seq: UInt64, orgSeq: UInt64, at t: UInt32) {
        lock.withLock { if map[k] == nil { remember(k, seq: seq, orgSeq: orgSeq, at: t) } }
    }

    /// Stores a completed key, evicting the oldest beyond `maxKeys` (lock held).
    private func remember(_ k: Key, seq: UInt64, orgSeq: UInt64, at: UInt32) {
        map[k] = .done(seq: seq, orgSeq: orgSeq, at: at)
        order.append((k, at))
        while map.count > maxKeys, head < order.count {
            dropOldest()
        }
        compact()
    }

    private func dropOldest() {
        let (k, at) = order[head]
        head += 1
        // Only if the map still holds this completion (a key may have been completed again).
        if case .done(_, _, let t)? = map[k], t == at { map[k] = nil }
    }

    private func compact() {
        if head > 4096 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }

    /// Drops keys older than the window.
    func sweep() {
        let cutoff = Double(Self.now()) - window
        lock.withLock {
            while head < order.count, Double(order[head].1) < cutoff { dropOldest() }
            compact()
        }
    }

    private static let keyMember = Array(#""idempotency_key":""#.utf8)

    /// False when `payload` cannot hold a top-level idempotency key: the member's bytes appear
    /// nowhere in it.
    static func mayHoldKey(_ payload: [UInt8]) -> Bool { payload.contains(bytes: keyMember) }

    /// Re-reads the entries received within the window (newest segments first) and remembers
    /// their keys, at most `maxKeys` of them. Returns how many keys were found.
    func rebuild(from ledger: Ledger) throws -> Int {
        let cutoff = Int64((Date().timeIntervalSince1970 - window) * 1000)
        var found: [(Key, UInt64, UInt64, UInt32)] = []
        for info in ledger.segments().reversed() where info.endSeq > info.firstSeq && info.state != .retired {
            var last: [UInt8]?
            try ledger.scanRecords(from: info.firstSeq, to: min(info.endSeq, ledger.size)) { rec in
                last = rec.payload
                // Most entries carry no key: a byte search rules them out before anything is
                // parsed (what it finds is confirmed at the top level below).
                guard Self.mayHoldKey(rec.payload), let p = try? RecordPayload(bytes: rec.payload),
                    CanonicalScan.topLevelString(p.content, key: "idempotency_key") != nil,
                    let v = try? Entry.decodeStored(p.content), let key = v["idempotency_key"]?.stringValue,
                    let org = v["org"]?.stringValue, case .int(let uid)? = v["writer"]?["uid"],
                    let t = v["received_at"]?.stringValue.flatMap(Timestamp.parse), t >= cutoff
                else { return true }
                found.append(
                    (
                        Self.key(uid: UInt32(truncatingIfNeeded: uid), org: org, key: key), rec.seq, p.orgSeq,
                        UInt32(clamping: t / 1000)
                    ))
                return true
            }
            // received_at never decreases in sequence order: a segment's last entry is its newest.
            let newest =
                last.flatMap { try? RecordPayload(bytes: $0) }
                .flatMap { CanonicalScan.topLevelString($0.content, key: "received_at") }
                .flatMap(Timestamp.parse) ?? .min
            if newest < cutoff || found.count >= maxKeys { break }
        }
        // Oldest first, so that eviction keeps the newest.
        for (k, seq, orgSeq, t) in found.sorted(by: { $0.1 < $1.1 }) { seed(k, seq: seq, orgSeq: orgSeq, at: t) }
        return min(found.count, maxKeys)
    }
}
