import AuditBase
import AuditEntries
import AuditIndex
import LogProofs
import LogTree
import SegmentStore

/// What the layers above ask of the ledger's parts (the segment store, the tree, the org index
/// and the checkpoint log stay the ledger's own): each operation keeps the parts consistent
/// with one another, as reaching into one of them could not.
extension Ledger {
    // MARK: Segments

    /// Entries durably stored (the tree takes them right after; see `size`).
    public var storedCount: UInt64 { store.endSeq }

    /// The segments, oldest first.
    public func segments() -> [SegmentInfo] { store.segments() }

    /// The end of the sealed and retired segments: what a seal's org-state snapshot and the
    /// daemon's recheck cover.
    public var sealedEnd: UInt64 { store.sealedEnd }

    /// The number of the segment being appended to: it changes at each rotation.
    public var openSegment: UInt64 { store.openSegment }

    /// The durable part of each segment not sealed yet, oldest first (for a copier that follows the log).
    public func unsealedSegments() -> [UnsealedSegment] { store.unsealed() }

    /// The data directory's `segments/`, where the archive tier keeps its markers.
    public var segmentsDirectory: String { store.directory }

    /// Calls `body` with each stored record in `[from, to)`, oldest first, until it returns false.
    public func scanRecords(from: UInt64, to: UInt64, _ body: (StoredRecord) throws -> Bool) throws {
        try store.scan(from: from, to: to, body)
    }

    // MARK: The tree and checkpoints

    /// The tree's root at `size`.
    public func root(at size: UInt64) throws -> Hash { try tree.root(at: size) }

    /// The leaf hash of entry `seq`.
    public func leaf(_ seq: UInt64) throws -> Hash { try tree.leaf(seq) }

    /// The leaf hashes of entries `[from, from + count)`.
    public func leaves(from: UInt64, count: Int) throws -> [Hash] { try tree.leaves(from: from, count: count) }

    /// The aligned perfect subtrees covering leaves `[from, to)` (the right side of a range proof).
    public func subtrees(from: UInt64, to: UInt64) throws -> [(height: Int, hash: Hash)] {
        try CompactRange.subtrees(from: from, to: to, tree: tree)
    }

    /// The perfect subtrees covering leaves `[0, size)` (the left side of a range proof).
    public func prefixNodes(size: UInt64) throws -> [(height: Int, hash: Hash)] {
        try CompactRange.nodes(of: size, tree: tree)
    }

    /// The first signed checkpoint of at least `size` entries, checked against this log's key.
    public func checkpoint(atLeast size: UInt64) throws -> SignedCheckpoint? {
        try checkpoints.first(atLeast: size, verifier: verifier)
    }

    /// Takes in a checkpoint signed with this log's key elsewhere (recovery brings the bucket's
    /// into a rebuilt directory): it must cover no more than the tree holds and its root must
    /// be the tree's at its size. One no newer than the latest is already covered and skipped.
    public func adopt(_ cp: SignedCheckpoint) throws {
        let size = cp.checkpoint.size
        guard cp.checkpoint.origin == origin else {
            throw AuditError(.invalidArgument, "the checkpoint is for log \(cp.checkpoint.origin), not \(origin)")
        }
        guard size <= tree.size else {
            throw AuditError(
                .corrupt, "the checkpoint at size \(size) covers entries this log does not hold (it holds \(tree.size))"
            )
        }
        guard try tree.root(at: size) == cp.checkpoint.root else {
            throw AuditError(
                .corrupt, "the checkpoint at size \(size) signs another root than this log's entries give: they differ")
        }
        if let l = checkpoints.latest, l.checkpoint.size >= size { return }
        try checkpoints.append(cp)
    }

    /// Signed checkpoints written so far.
    public var checkpointCount: UInt64 { checkpoints.total }

    /// The checkpoint log's file (named in verification findings).
    public var checkpointLogPath: String { checkpoints.logPath }

    /// The checkpoints from byte `from` of the checkpoint log, each checked (signature, and
    /// never smaller than the one before, nor than `after`), and the offset to continue from.
    public func verifiedCheckpoints(from: Int64 = 0, after: UInt64? = nil) throws -> ([CheckpointLog.Verified], Int64) {
        try checkpoints.verified(from: from, after: after, verifier: verifier)
    }

    // MARK: The index

    /// Whether `org` has any entry.
    public func holds(org: String) -> Bool { index.holds(org: org) }

    /// The earliest and latest receive time (ms) in sealed segment `n`, from its index file.
    public func timeRange(segment n: UInt64) throws -> (Int64, Int64)? { try index.timeRange(segment: n) }

    // MARK: The retired tier

    /// Retires sealed segment `summary.segment` from the hot directory once its tier holds it
    /// (its marker at `marker`, written durably by the tier): the store reads it no more, the
    /// index answers from `summary`, and the segment and index files go.
    public func retire(_ summary: RetiredSummary, marker: String, hint: String) throws {
        try store.retire(summary.segment, path: marker, label: summary.label, hint: hint)
        index.addArchived(summary)
        try FileOps.unlink(store.directory + "/" + SegmentNames.sealed(summary.segment))
        try FileOps.unlink(DataDirectory(directory).index + "/" + OrgIndex.fileName(summary.segment))
        try FileOps.fsyncDirectory(store.directory)
        try FileOps.fsyncDirectory(DataDirectory(directory).index)
    }

    /// A retired segment's entries are about to be purged: their rows leave the orgs' posting
    /// lists first, and their personal values the personal store (their retention is over),
    /// unless a restore brought the segment back to the hot directory.
    public func purgeRows(_ summary: RetiredSummary) throws {
        guard !FileOps.exists(store.directory + "/" + SegmentNames.sealed(summary.segment)) else { return }
        try index.purgeSections(summary)
        try personal.drop(summary.firstSeq..<summary.endSeq)
    }

    /// The tier's summary of a retired segment changed (it was purged).
    public func retiredChanged(_ summary: RetiredSummary) { index.addArchived(summary) }

    /// Takes back segments the tier restored into the hot directory: the store reads them
    /// again, and their index sections go back into the orgs' posting lists.
    public func reinstateRestored() throws {
        _ = try store.reinstateReturned()
        try index.refreshRestored(store.segments())
    }
}
