import AuditBase
import ChainIndex
import Foundation
import LogProofs
import Replication

/// Which checkpoints the daemon shows the world: readers on the read port, writers asking for
/// one, witnesses. With replication on, only a checkpoint whose entries the bucket holds is
/// shown (format-spec.md §12.6): a machine lost after signing one more cannot leave a witness
/// or a reader holding a checkpoint no recovered log extends. Without it, every signed one.
struct Publication: Sendable {
    let ledger: Ledger
    let replicator: Replicator?
    /// How long an export may wait for the bucket to back its own checkpoint.
    let wait: Duration

    /// The newest checkpoint that may be shown.
    var latest: SignedCheckpoint? {
        guard let replicator else { return ledger.latestCheckpoint }
        return replicator.published
    }

    /// The first signed checkpoint of at least `size` entries, if it may be shown.
    func checkpoint(atLeast size: UInt64) throws -> SignedCheckpoint? {
        guard let cp = try ledger.checkpoint(atLeast: size) else { return nil }
        if let replicator, cp.checkpoint.size > replicator.replicatedEnd { return nil }
        return cp
    }

    /// Returns once the bucket holds every entry below `size` (at once without replication);
    /// throws after `wait` if it does not.
    func backed(_ size: UInt64) async throws {
        guard let replicator else { return }
        let deadline = ContinuousClock.now + wait
        let ok = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            replicator.whenReplicated(end: size, deadline: deadline) { c.resume(returning: $0) }
        }
        guard ok else { throw NotBacked(size: size, status: replicator.status) }
    }

    /// The bucket did not come to hold a checkpoint's entries in time.
    struct NotBacked: Error, CustomStringConvertible {
        let size: UInt64
        let status: ReplicationStatus
        var description: String {
            "the object store does not hold entries \(status.replicatedEnd)..<\(size) yet\(status.failing.map { " (\($0))" } ?? ""), so their checkpoint is not published; try again when replication catches up"
        }
    }
}

extension ReplicationStatus {
    /// As `/healthz` and `/v1/operator/status` show it.
    var json: [String: Any] {
        var o: [String: Any] = [
            "replicated_end": replicatedEnd, "stored_end": storedEnd, "lag_entries": lagEntries,
            "lag_bytes": lagBytes, "lag_seconds": (lagSeconds * 1000).rounded() / 1000, "bundles": bundles,
            "tail_objects": tailObjects,
        ]
        o["published_size"] = published.map { $0 as Any } ?? NSNull()
        if let f = failing { o["failing"] = f }
        if let s = failingSince { o["failing_since"] = Timestamp.format(Int64(s.timeIntervalSince1970 * 1000)) }
        return o
    }
}
