import Foundation
import Hummingbird

/// Exports write: each appends its own audit entry and signs a checkpoint. A token may start
/// `burst` of them at once and then one every `interval` seconds (a token bucket per token),
/// so a looping client cannot fill the log with export records or keep the signer busy.
final class ExportLimit: @unchecked Sendable {
    let burst: Double
    let interval: Double
    private let lock = NSLock()
    private var buckets: [String: (tokens: Double, at: Double)] = [:]

    init(burst: Int = 10, interval: Double = 2) {
        self.burst = Double(burst)
        self.interval = interval
    }

    /// Takes one export from `token`'s bucket, or throws 429 saying when to come back.
    func admit(token: String, now: Double = Date().timeIntervalSince1970) throws {
        let wait: Double? = lock.withLock {
            var b = buckets[token] ?? (burst, now)
            b.tokens = min(burst, b.tokens + (now - b.at) / interval)
            b.at = now
            defer { buckets[token] = b }
            guard b.tokens >= 1 else { return (1 - b.tokens) * interval }
            b.tokens -= 1
            // Forget buckets that refilled long ago, so the table stays as small as the tokens in use.
            if buckets.count > 10_000 { buckets = buckets.filter { now - $0.value.at < burst * interval } }
            return nil
        }
        if let wait {
            let s = Int(wait.rounded(.up))
            throw HTTPError(
                .tooManyRequests, headers: [.retryAfter: String(s)],
                message:
                    "this token started \(Int(burst)) exports recently (each is written to the log); try again in \(s) s"
            )
        }
    }
}
