import Archive
import AuditBase
import AuditEntries
import AuditIndex
import ChainIndex
import Foundation
import LogProofs
import LogTree
import PersonalStore
import SegmentStore

/// What a verification found.
public struct VerificationReport: Sendable {
    /// Entries rehashed.
    public var entries: UInt64 = 0
    /// Checkpoints whose signature and root were checked.
    public var checkpoints: Int = 0
    /// The newest checkpoint's size.
    public var latestCheckpoint: UInt64?
    /// Distinct orgs seen.
    public var orgs: Int = 0
    /// Personal values checked against their entries' commitments (§5.4).
    public var personalOpened = 0
    /// Committed fields whose subject was erased under a record.
    public var personalErased = 0
    /// Each completed erasure: its record, authority, and the fields found erased under it.
    public var erasures: [(record: UInt64, authority: String, fields: Int, withheld: Int)] = []
    /// The first failure, if any (verification stops there).
    public var failure: VerificationFailure?
    /// Things worth knowing that are not failures (a torn tail awaiting its cut, say).
    public var notes: [String] = []
    /// The content of every hot entry whose action starts with one of `Verifier.collect`.
    public var collected: [[UInt8]] = []
    /// The latest `received_at` in any archived segment (from its signed summary): every
    /// entry received after it is in the hot tier, there to be read.
    public var archivedUntil: Int64?
    /// True when nothing failed.
    public var ok: Bool { failure == nil }
}

/// Rechecks a log directory from its bytes, read-only: block checksums, content hashes, both
/// chains, the stored tree, and every checkpoint's signature and root (format-spec.md §10).
public struct Verifier {
    let directory: String
    let verifier: LogKeys
    /// The key this verifier trusts.
    public var trusted: LogKeys { verifier }

    /// A verifier for `directory`, trusting `key` (default: the key recorded in the directory,
    /// which an auditor should compare with the one published by the operator).
    public init(directory: String, key: LogKeys? = nil) throws {
        self.directory = directory
        self.verifier = try key ?? Ledger.verifierKey(directory: directory)
    }

    /// Checkpoints an auditor kept from earlier (signed by the trusted key): the log must
    /// extend each (hold at least its size, and its root at that size), or it was rolled back
    /// or forked. Checked once the entries and the tree have verified.
    public var pinned: [(checkpoint: SignedCheckpoint, source: String)] = []

    /// Action prefixes whose entries the report hands back (operator records, checked against
    /// the files they govern by whoever knows those files).
    public var collect: [String] = []

    /// Runs the verification; `progress(done, total)` is called now and then.
    public func run(progress: ((UInt64, UInt64) -> Void)? = nil) -> VerificationReport {
        var report = VerificationReport()
        func fail(_ seq: UInt64?, _ path: String, _ offset: Int64?, _ m: String) -> VerificationReport {
            report.failure = VerificationFailure(seq: seq, path: path, offset: offset, message: m)
            return report
        }
        func fromError(_ e: Error, seq: UInt64? = nil) -> VerificationReport {
            if let s = e as? AuditError { return fail(seq, s.path ?? directory, s.offset, s.message) }
            return fail(seq, directory, nil, "\(e)")
        }

        // 1. Checkpoints: signatures, origin, sizes never shrinking.
        var cps: [(size: UInt64, root: Hash, offset: Int64)] = []
        let cpPath = DataDirectory(directory).checkpoints + "/" + CheckpointLog.logName
        do {
            let log = try CheckpointLog(
                directory: DataDirectory(directory).checkpoints, verifier: verifier, readOnly: true)
            cps = try log.verified(verifier: verifier).0
        } catch { return fromError(error) }
        report.checkpoints = cps.count
        report.latestCheckpoint = cps.last?.size

        // 2. The org-state snapshot, then the tree, then the segments, read-only.
        let statePath = DataDirectory(directory).orgState
        var snapshot: (end: UInt64, orgs: [String: OrgMark])?
        do { snapshot = try Ledger.checkedOrgState(statePath) } catch { return fromError(error) }
        let store: SegmentStore
        let tree: TreeStore
        do {
            // Checkpoints, the snapshot, the tree, then the segments: a running daemon appends
            // leaves only after their entries are durable, signs only what its tree holds, and
            // writes the snapshot only after the seal and the tree's sync, so in this order each
            // view holds at least as much as the one before, and verifying beside a live daemon
            // sees no false "removed" entries.
            tree = try TreeStore(directory: DataDirectory(directory).tree, readOnly: true)
            store = try Ledger.segmentStore(directory, retired: ArchiveTier(), readOnly: true)
        } catch { return fromError(error) }
        if store.recovery.bytesCut > 0 {
            report.notes.append(
                "open segment has a torn tail of \(store.recovery.bytesCut) bytes at offset \(store.recovery.cutOffset) (\(store.recovery.reason ?? "")); it is unacknowledged and will be cut at the next start"
            )
        }
        let total = store.endSeq
        var checker = ChainChecker(store: store, tree: tree, checkpoints: cps, checkpointPath: cpPath)
        checker.indexDirectory = DataDirectory(directory).index
        checker.collect = collect.map { Array($0.utf8) }
        let personal: PersonalCheck
        do {
            personal = PersonalCheck(
                store: try PersonalStore(directory: DataDirectory(directory).personal, readOnly: true))
        } catch { return fromError(error) }
        checker.personal = personal
        if let f = checker.checkEmptyCheckpoints() {
            report.failure = f
            return report
        }
        let storedLeaves = tree.size
        do {
            // The org-state snapshot is checked against the entries up to its end.
            if let snapshot, snapshot.end > 0, snapshot.end <= total {
                if let f = try checker.checkSegments(
                    upTo: snapshot.end, verifier: verifier, progress: { p in progress?(p, total) })
                {
                    report.failure = f
                    return report
                }
                if let f = checker.checkOrgState(statePath, orgs: snapshot.orgs) {
                    report.failure = f
                    return report
                }
            }
            if let f = try checker.checkSegments(
                upTo: total, verifier: verifier, progress: { p in progress?(p, total) })
            {
                report.failure = f
                return report
            }
            if let snapshot, snapshot.end > total {
                return fail(
                    total, statePath, 8,
                    "org-state snapshot ends at \(snapshot.end), beyond the \(total) entries of the log: entries were removed"
                )
            }
        } catch { return fromError(error, seq: checker.position) }
        if let f = PostingCheck.check(
            indexDirectory: DataDirectory(directory).index, segments: store.segments(),
            served: FileOps.isLocked(DataDirectory(directory).lock))
        {
            report.failure = f
            return report
        }
        let (personalFailure, unchecked) = personal.finish(checkedBelow: total)
        if let m = personalFailure { return fail(nil, DataDirectory(directory).personal, nil, m) }
        if !unchecked.isEmpty {
            report.notes.append(
                "erasure records \(unchecked.map(String.init).joined(separator: ", ")) are in archived segments: not checked against personal/erasures"
            )
        }
        report.personalOpened = personal.opened
        report.personalErased = personal.erased
        report.erasures = personal.erasures
        report.entries = checker.position
        report.orgs = checker.orgCount
        report.collected = checker.collected
        report.archivedUntil = checker.archivedUntil
        for (p, source) in pinned {
            let cp = p.checkpoint
            guard cp.size <= total else {
                return fail(
                    total, source, nil,
                    "the log holds \(total) entries but the checkpoint kept in \(source) was signed at size \(cp.size): the log was rolled back"
                )
            }
            do {
                guard try tree.root(at: cp.size) == cp.root else {
                    return fail(
                        nil, source, nil,
                        "the log's tree at size \(cp.size) has another root than the checkpoint kept in \(source): the log forked (two histories signed with one key)"
                    )
                }
            } catch { return fromError(error) }
        }
        if let last = cps.last, last.size > total {
            return fail(
                total, DataDirectory(directory).segments, nil,
                "a checkpoint was signed at size \(last.size) but the segments hold only \(total) entries: the newest entries were deleted or a segment truncated"
            )
        }
        if storedLeaves > total {
            return fail(
                total, DataDirectory(directory).treeLeaves, Int64(total * 32),
                "the tree holds \(storedLeaves) leaves but the segments only \(total) entries: entries were removed")
        }
        if let snapshot, storedLeaves < snapshot.end {
            // Tree files are synced at every seal, before the snapshot is written: leaves below
            // its end cannot be missing after a crash, only after damage.
            return fail(
                storedLeaves, DataDirectory(directory).treeLeaves, Int64(storedLeaves * 32),
                "the tree holds \(storedLeaves) leaves but \(snapshot.end) were synced at the last seal: the tree file was truncated"
            )
        }
        if storedLeaves < total {
            report.notes.append(
                "\(total - storedLeaves) newest entries have no stored tree hashes yet (recomputed at the next start)")
        }
        if let last = cps.last?.size, last < total {
            report.notes.append("\(total - last) newest entries are not yet covered by a signed checkpoint")
        }
        progress?(report.entries, total)
        return report
    }
}
