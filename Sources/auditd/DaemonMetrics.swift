import Metrics

/// The daemon's metrics (swift-metrics, exported by swift-prometheus on `/metrics`). No metric
/// carries an org label: metrics are readable without an org token.
final class DaemonMetrics: Sendable {
    let entries = Counter(label: "auditd_entries_ingested_total")
    let bytes = Counter(label: "auditd_ingested_bytes_total")
    let ack = Timer(label: "auditd_ack_latency_seconds", preferredDisplayUnit: .seconds)
    let commit = Timer(label: "auditd_group_commit_seconds", preferredDisplayUnit: .seconds)
    let commitSize = Recorder(label: "auditd_group_commit_entries")
    let segments = Gauge(label: "auditd_segments")
    let sealedSegments = Gauge(label: "auditd_sealed_segments")
    let checkpoints = Gauge(label: "auditd_checkpoints")
    let treeSize = Gauge(label: "auditd_tree_size")
    let verifyRuns = Counter(label: "auditd_verification_runs_total")
    let verifyFailures = Counter(label: "auditd_verification_failures_total")
    let verifiedEntries = Gauge(label: "auditd_verified_entries")
    let exports = Counter(label: "auditd_exports_total")

    func ingested(count: Int, bytes n: Int) {
        entries.increment(by: count)
        bytes.increment(by: n)
    }

    func ackLatency(_ d: Duration) { ack.recordNanoseconds(Self.nanoseconds(d)) }

    /// One group commit: its size and the time its write and fdatasync took.
    func committed(count: Int, took d: Duration) {
        commit.recordNanoseconds(Self.nanoseconds(d))
        commitSize.record(count)
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }

    func rejected(_ reason: String) {
        Counter(label: "auditd_rejected_total", dimensions: [("reason", reason)]).increment()
    }
}
