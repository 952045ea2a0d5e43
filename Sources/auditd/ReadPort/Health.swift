import Foundation
import Hummingbird

/// What the background verifier and the archiver last found, and when, for `/healthz` and the
/// operator's overview.
final class HealthState: @unchecked Sendable {
    /// One background pass: when it ended (ms since 1970) and what it said.
    struct Pass: Sendable {
        var at: Int64
        var result: String
    }

    private let lock = NSLock()
    private var _failure: String?
    private var _verified: UInt64 = 0
    private var _verifiedAt: Int64?
    private var _archive: String?
    private var _archiveRun: Pass?
    var failure: String? { lock.withLock { _failure } }
    /// Why the archive store cannot be used now (nil when it can).
    var archiveFailure: String? { lock.withLock { _archive } }
    func failArchive(_ m: String?) { lock.withLock { _archive = m } }
    var verified: UInt64 { lock.withLock { _verified } }
    /// When the verifier last finished a pass.
    var verifiedAt: Int64? { lock.withLock { _verifiedAt } }
    /// The archiver's last pass.
    var archiveRun: Pass? { lock.withLock { _archiveRun } }
    func fail(_ m: String) { lock.withLock { _failure = m } }
    func progress(_ n: UInt64) {
        lock.withLock {
            _verified = n
            _verifiedAt = Self.now()
        }
    }
    func archived(_ result: String) { lock.withLock { _archiveRun = Pass(at: Self.now(), result: result) } }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

extension ReadPort {
    /// `ok`; `degraded` (200) while writes are suspended, the entries already acknowledged
    /// safe; `failing` (503) when verification failed or writes stopped until a restart.
    func healthz() -> Response {
        metrics.observe(ledger, replication: publication.replicator?.status, replica: replica)
        let writes = ledger.writeState
        if let f = health.failure {
            return Self.json(
                ["status": "failing", "verification": f, "writes": writes.description], status: .serviceUnavailable)
        }
        switch writes {
        case .accepting:
            var body: [String: Any] = ["status": "ok", "verified_entries": health.verified]
            // Replication's lag is always shown; a store that fails makes the log degraded.
            let replication = publication.replicator?.status
            if let r = replication { body["replication"] = r.json }
            if let r = replica {
                var j = r.json
                j["entries"] = ledger.size
                j["checkpoint_size"] = ledger.latestCheckpoint?.checkpoint.size ?? 0
                body["replica"] = j
                if r.failing != nil { body["status"] = "degraded" }
            }
            // Witnesses, time-stamping authorities or a store that cannot be reached never
            // stop ingest (in local mode): the log is degraded, not failing.
            if let t = timestamper?.failing {
                body["status"] = "degraded"
                body["timestamps"] = t
            }
            if let w = witnessing?.failing {
                body["status"] = "degraded"
                body["witnesses"] = w
            } else if let f = replication?.failing {
                body["status"] = "degraded"
                body["replication_failing"] = f
            } else if let a = health.archiveFailure {
                body["status"] = "degraded"
                body["archive"] = a
            }
            return Self.json(body)
        case .suspended:
            return Self.json(["status": "degraded", "writes": writes.description, "verified_entries": health.verified])
        case .failed:
            return Self.json(["status": "failing", "writes": writes.description], status: .serviceUnavailable)
        }
    }
}
