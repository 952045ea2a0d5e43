import AuditEntries
import ChainIndex
import Metrics
import Replication

/// The daemon's metrics (swift-metrics, exported by swift-prometheus on `/metrics`). No metric
/// carries an org label: metrics are readable without an org token.
final class DaemonMetrics: Sendable {
    let entries = Counter(label: "auditd_entries_ingested_total")
    let bytes = Counter(label: "auditd_ingested_bytes_total")
    let ack = Timer(label: "auditd_ack_latency_seconds", preferredDisplayUnit: .seconds)
    let commit = Timer(label: "auditd_group_commit_seconds", preferredDisplayUnit: .seconds)
    let commitSize = Recorder(label: "auditd_group_commit_entries")
    /// Writes outrunning the sealer: how long the commit thread held the next group waiting
    /// for it (slowdown), and how long it held it sealing a segment itself (back-pressure:
    /// the rotated segments at their bound). Either one growing says the sealer is the limit.
    let sealerSlowdown = Timer(label: "auditd_sealer_slowdown_seconds", preferredDisplayUnit: .seconds)
    let sealerBackpressure = Timer(label: "auditd_sealer_backpressure_seconds", preferredDisplayUnit: .seconds)
    let segments = Gauge(label: "auditd_segments")
    let sealedSegments = Gauge(label: "auditd_sealed_segments")
    let checkpoints = Gauge(label: "auditd_checkpoints")
    let treeSize = Gauge(label: "auditd_tree_size")
    let verifyRuns = Counter(label: "auditd_verification_runs_total")
    let verifyFailures = Counter(label: "auditd_verification_failures_total")
    let verifiedEntries = Gauge(label: "auditd_verified_entries")
    let exports = Counter(label: "auditd_exports_total")
    /// 1 while the log takes writes, 0 while they are suspended or stopped.
    let writesAccepting = Gauge(label: "auditd_writes_accepting")
    /// Entries refused because writes were suspended or stopped (a counter kept by the ledger).
    let writesRefused = Gauge(label: "auditd_writes_refused_total")
    /// Replication into the bucket: what it does not hold yet, and the checkpoint it backs.
    let replicationLagEntries = Gauge(label: "auditd_replication_lag_entries")
    let replicationLagBytes = Gauge(label: "auditd_replication_lag_bytes")
    let replicationLagSeconds = Gauge(label: "auditd_replication_lag_seconds")
    let replicatedEnd = Gauge(label: "auditd_replicated_entries")
    let publishedSize = Gauge(label: "auditd_published_checkpoint_size")
    let replicationFailing = Gauge(label: "auditd_replication_failing")
    /// How long each tail object's PUT took, from the replicator's thread to the store's answer.
    let replicationPut = Timer(label: "auditd_replication_put_seconds", preferredDisplayUnit: .seconds)
    /// A read replica: seconds since the start of its last round that took everything the
    /// bucket held, and whether its last round stopped on an object that does not verify.
    let replicaLagSeconds = Gauge(label: "auditd_replica_lag_seconds")
    let replicaFailing = Gauge(label: "auditd_replica_failing")

    /// Copies the ledger's write state into the gauges (before every scrape and health check).
    func observe(_ ledger: Ledger, replication: ReplicationStatus? = nil, replica: ReplicaState? = nil) {
        writesAccepting.record(ledger.writeState.isAccepting ? 1 : 0)
        writesRefused.record(Int64(ledger.refusedEntries))
        if let r = replication {
            replicationLagEntries.record(Int64(r.lagEntries))
            replicationLagBytes.record(r.lagBytes)
            replicationLagSeconds.record(r.lagSeconds)
            replicatedEnd.record(Int64(r.replicatedEnd))
            publishedSize.record(Int64(r.published ?? 0))
            replicationFailing.record(r.failing == nil ? 0 : 1)
        }
        if let r = replica {
            if let lag = r.lagSeconds { replicaLagSeconds.record(lag) }
            replicaFailing.record(r.failing == nil ? 0 : 1)
        }
    }

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

    /// The commit thread held a group for the sealer (`LedgerOptions.onSealerWait`).
    func heldForSealer(_ d: Duration, sealedHere: Bool) {
        (sealedHere ? sealerBackpressure : sealerSlowdown).recordNanoseconds(Self.nanoseconds(d))
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }

    /// Counts a refused request by reason. Reasons come from a fixed set, never from what
    /// a peer sent (a member name would make the label set unbounded).
    func rejected(_ reason: RejectReason) {
        Counter(label: "auditd_rejected_total", dimensions: [("reason", reason.rawValue)]).increment()
    }

    /// Counts an entry refused by validation, labelled by the entry field at fault when it
    /// is one the format defines, `other_field` otherwise.
    func rejectedEntry(field: String) {
        let top = field.split(separator: ".").first.map(String.init) ?? ""
        if top.isEmpty { return rejected(.invalidJSON) }
        let label = EntrySchema.inputMembers.contains(top) ? top : "other_field"
        Counter(label: "auditd_rejected_total", dimensions: [("reason", label)]).increment()
    }
}

/// Why the ingest socket refused a request, as a metric label.
enum RejectReason: String {
    case frameTooLarge = "frame_too_large"
    case malformedFrame = "malformed_frame"
    case unknownFrameType = "unknown_frame_type"
    case invalidJSON = "invalid_json"
    case forbiddenPeer = "forbidden_peer"
    case idle = "idle_connection"
    case tooManyConnections = "too_many_connections"
}
