import AuditBase
import ChainIndex
import Foundation
import Testing

@testable import auditd

/// Issue 7 B9: idempotency memory does not grow with rate × window.
@Suite struct IdempotencyBoundTests {
    func rssKiB() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    @Test func theOldestKeysGoFirstPastTheBound() {
        let cache = IdempotencyCache(window: 900, maxKeys: 1000) { _ in Hash.zero }
        cache.markReady()
        for i in 0..<5000 {
            let k = IdempotencyCache.key(uid: 1, org: "org_a", key: "k\(i)")
            guard case .reserved = cache.lookup(k, waiter: { _ in }) else {
                Issue.record("key \(i) should be new")
                return
            }
            cache.complete(k, Receipt(seq: UInt64(i), hash: .zero, orgSeq: UInt64(i)))
        }
        #expect(cache.count == 1000)
        if case .done(let r) = cache.lookup(IdempotencyCache.key(uid: 1, org: "org_a", key: "k4999"), waiter: { _ in })
        {
            #expect(r.seq == 4999 && r.orgSeq == 4999)
        } else {
            Issue.record("the newest key is remembered")
        }
        guard case .reserved = cache.lookup(IdempotencyCache.key(uid: 1, org: "org_a", key: "k0"), waiter: { _ in })
        else {
            Issue.record("the oldest key was evicted")
            return
        }
        // The same key for another org, or another writer, is another entry.
        guard case .reserved = cache.lookup(IdempotencyCache.key(uid: 1, org: "org_b", key: "k4999"), waiter: { _ in })
        else {
            Issue.record("org is part of the key")
            return
        }
    }

    @Test func aKeyCostsUnderAHundredBytes() {
        let n = 300_000
        let cache = IdempotencyCache(window: 900, maxKeys: n) { _ in Hash.zero }
        let keys = (0..<n).map { IdempotencyCache.key(uid: 7, org: "org_\($0 % 100)", key: "request-\($0)") }
        let before = rssKiB()
        for (i, k) in keys.enumerated() {
            _ = cache.lookup(k, waiter: { _ in })
            cache.complete(k, Receipt(seq: UInt64(i), hash: .zero, orgSeq: 0))
        }
        let perKey = Double(rssKiB() - before) * 1024 / Double(n)
        print("idempotency cache: \(Int(perKey)) bytes per key (\(n) keys)")
        #expect(cache.count == n)
        #expect(perKey < 160, "\(perKey) bytes per key")
    }
}
