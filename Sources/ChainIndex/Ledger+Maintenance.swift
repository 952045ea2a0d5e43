import AuditBase
import AuditEntries
import AuditIndex
import Foundation
import LogProofs
import LogTree
import SegmentStore

/// Periodic work made due by the groups since the last `maintain`.
struct MaintenanceDue {
    /// A group wrote entries: the open segment may be full, the sealer behind.
    var wrote = false
    /// The ticker asked: the open segment may be old.
    var tick = false
}

/// The ledger's maintenance, after each group's acks are out and before the next group, on the
/// thread that runs that one (format-spec.md §3): the tree's leaves, rotation, the zeros
/// filled ahead of the open segment, sealing when writers outrun the sealer, and the periodic
/// checkpoint. The ticker and the sealer (`BackgroundLoop`s, or the daemon's maintenance
/// service through `tick()` and `sealRotated()`) only ask for it.
extension Ledger {
    /// Runs the periodic work the last groups made due; a failure suspends writes.
    func maintain() {
        let d = due
        due = MaintenanceDue()
        if let report = options.onCommit, !commitTimes.isEmpty {
            for t in commitTimes { report(t.count, t.took) }
            commitTimes.removeAll(keepingCapacity: true)
        }
        guard state.isAccepting else { return }
        deferred {
            try applyLeaves()
            if d.wrote {
                try store.rotateIfFull()
                store.fillAhead()
            }
            // Writes outrunning the sealer: first the next group waits a little for it
            // (slowdown), leaving it the cores; if the backlog still grows, seal here, so
            // unsealed segments (and their in-memory index) stay bounded. The acks are out
            // already; the next group waits for the seal, which slows writers to the sealer's
            // pace (back-pressure). Only what is over the bound: the sealer goes on with the rest.
            let held = ContinuousClock.now
            if store.rotatedBacklogFull {
                try store.sealBacklog()
                options.onSealerWait?(ContinuousClock.now - held, true)
            } else if store.waitForSealer() {
                options.onSealerWait?(ContinuousClock.now - held, false)
            }
            if d.tick { try store.rotateIfOld() }
            let latest = checkpoints.latest?.checkpoint.size ?? 0
            if tree.size > latest && ContinuousClock.now - lastCheckpointAt >= options.checkpointInterval {
                try signCheckpoint()
            }
        }
    }

    /// Returns once the commit thread has finished the work that follows the acks already
    /// given (rotation, sealing under back-pressure, the periodic checkpoint): for tools and
    /// tests that look at the directory right after appending.
    public func settle() throws {
        guard let queue else { throw GroupCommitStopped() }
        _ = try queue.submitAndWait([])
    }

    /// Asks the commit thread for its periodic work (the ticker: every 0.2 s).
    public func tick() { queue?.submit([.maintenance]) { _ in } }

    /// Seals every rotated segment (the sealer: off the commit thread).
    /// Failures are kept in `backgroundError` and retried on the next call.
    public func sealRotated() {
        guard store.hasRotated else { return }
        do { try store.sealRotated() } catch { reportBackground(error) }
    }

    /// Runs work that follows a durable sync; a failure suspends writes instead of failing
    /// the group.
    func deferred(_ work: () throws -> Void) {
        do { try work() } catch {
            state.deferredWorkFailed(error)
            publish()
        }
    }

    /// Retries what a suspension left undone: the tree's missing leaves, a due rotation, a
    /// checkpoint. Writes resume once all of it succeeds.
    func retryDeferredWork() {
        do {
            try applyLeaves()
            try store.rotateIfFull()
            if tree.size > (checkpoints.latest?.checkpoint.size ?? 0) { try signCheckpoint() }
            state.resumed()
        } catch {
            state.deferredWorkFailed(error)
        }
        publish()
    }

    /// Gives the tree the leaves of the groups committed since the last call, in memory and in
    /// its files: before the acks, so that a tool reading the files of a live directory finds
    /// every acknowledged entry's leaf. A write that fails leaves them staged (the tree has
    /// them) and is tried again with the next call.
    func applyLeaves() throws {
        if !unappliedLeaves.isEmpty {
            try tree.append(unappliedLeaves)
            unappliedLeaves.removeAll(keepingCapacity: true)
        }
        try tree.flush()
    }

    /// Signs a checkpoint of the whole tree: 1. check it extends the newest one the signer
    /// signed (never smaller, never inconsistent); 2. record it as the signer's newest,
    /// durably; 3. sign it and append it to the checkpoint log.
    func signCheckpoint(size: UInt64? = nil) throws {
        // A follower signs nothing: its checkpoints are the followed log's (`adopt`).
        guard let signer else { return }
        let size = size ?? tree.size
        guard size > (checkpoints.latest?.checkpoint.size ?? 0) || (size == 0 && checkpoints.latest == nil) else {
            return
        }
        let cp = Checkpoint(origin: origin, size: size, root: try tree.root(at: size))
        if let path = options.signerState {
            try signed?.check(treeSize: size, rootAt: { try tree.root(at: $0) }, what: "the tree to be signed")
            let state = SignerState(origin: origin, size: size, root: cp.root)
            try state.save(path)
            signed = state
        }
        try checkpoints.append(
            SignedCheckpoint(checkpoint: cp, note: try signNote(cp.text, size: size, signer: signer)))
        lastCheckpointAt = .now
    }

    /// A segment was sealed (on the sealer's thread, or the commit thread's back-pressure):
    /// the tree is synced, its index file written, the org-state snapshot moved to its end,
    /// and a checkpoint asked for.
    func sealed(_ info: SegmentInfo) throws {
        try tree.sync()
        let last = try index.seal(info)
        let snapshot: [String: OrgMark] = sealLock.withLock {
            for (o, h) in last { sealedOrgs[o] = OrgMark(count: h.orgSeq + 1, lastSeq: h.seq) }
            return sealedOrgs
        }
        try Self.saveOrgState(DataDirectory(directory).orgState, end: info.endSeq, orgs: snapshot)
        index.sealCompleted(info.segment)
        queue?.submit([.checkpoint]) { _ in }
    }
}
