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

/// The per-entry checks, resumable: content hash, org chain, link, leaf hash against the stored
/// tree, stored higher levels, and the root at every checkpoint size. Used by `Verifier` over a
/// whole directory and by the daemon's continuous verification over newly sealed segments.
public struct ChainChecker {
    let store: SegmentStore
    let tree: TreeStore
    var checkpoints: [(size: UInt64, root: Hash, offset: Int64)]
    let checkpointPath: String
    var orgs: [String: OrgPosition] = [:]
    var prev = Hash.zero
    /// The previous entry's received_at (it never decreases in sequence order), or the latest
    /// one an archived segment's stub claims.
    var lastTime: Int64 = 0
    /// The segment whose stub set `lastTime`, while no hot entry has followed it.
    var lastTimeStub: UInt64?
    /// Action prefixes (bytes) whose entries' content is kept in `collected`.
    public var collect: [[UInt8]] = []
    /// Contents of the entries `collect` asked for, in sequence order.
    public internal(set) var collected: [[UInt8]] = []
    /// The latest `received_at` of the archived segments stepped over.
    public internal(set) var archivedUntil: Int64?
    var range = CompactRange()
    var tiles: TileChecker
    var nextCp = 0
    /// One past the last entry checked.
    public internal(set) var position: UInt64 = 0
    /// Where sealed segments' index files are; when set, each one is compared, row by row,
    /// with the entries it describes (format-spec.md §10).
    public var indexDirectory: String?
    /// The index rows the entries of the current segment call for, per org.
    var segmentHits: [String: [IndexHit]] = [:]
    /// When set, each entry's committed fields are checked against the personal store.
    public var personal: PersonalCheck?

    /// A checker starting at entry 0.
    public init(
        store: SegmentStore, tree: TreeStore, checkpoints: [(size: UInt64, root: Hash, offset: Int64)],
        checkpointPath: String
    ) {
        self.store = store
        self.tree = tree
        self.checkpoints = checkpoints
        self.checkpointPath = checkpointPath
        tiles = TileChecker(tree: tree)
    }

    /// A checker of the open ledger's own files (the daemon's rechecks), starting at entry 0.
    public init(ledger: Ledger, checkpoints: [(size: UInt64, root: Hash, offset: Int64)]) {
        self.init(
            store: ledger.store, tree: ledger.tree, checkpoints: checkpoints, checkpointPath: ledger.checkpointLogPath)
    }

    /// Orgs seen so far.
    public var orgCount: Int { orgs.count }

    /// Adds checkpoints that appeared since (sizes must not decrease).
    public mutating func addCheckpoints(_ more: [(size: UInt64, root: Hash, offset: Int64)]) {
        checkpoints.append(contentsOf: more)
    }

    mutating func checkEmptyCheckpoints() -> VerificationFailure? {
        while nextCp < checkpoints.count && checkpoints[nextCp].size == 0 {
            if checkpoints[nextCp].root != Merkle.emptyRoot {
                return VerificationFailure(
                    seq: nil, path: checkpointPath, offset: checkpoints[nextCp].offset,
                    message: "checkpoint at size 0 has a wrong root")
            }
            nextCp += 1
        }
        return nil
    }

    /// A batch of records with the per-entry work done that needs nothing but the record:
    /// payload, content hash, org, time and index row (`ChainChecker.prepare`).
    public struct PreparedBatch: @unchecked Sendable {
        var seqs: [UInt64]
        var hashes: [Hash]
        var payloads: [RecordPayload?]
        var orgNames: [String?]
        var fields: [IndexFields?]
        var times: [Int64]
        /// Each entry's committed fields (§5.4.1), and the subject an erasure record names.
        var personal: [PersonalCheck.Prepared?]
    }

    /// The independent, expensive part of checking `batch`, on all cores (threads of its own, at
    /// the caller's priority); safe on any thread.
    /// With `personal`, each entry's committed fields are found too (`PersonalCheck.prepare`).
    public static func prepare(_ batch: [StoredRecord], personal withPersonal: Bool = false) -> PreparedBatch {
        let n = batch.count
        var hashes = [Hash](repeating: .zero, count: n)
        var payloads = [RecordPayload?](repeating: nil, count: n)
        var orgNames = [String?](repeating: nil, count: n)
        var fields = [IndexFields?](repeating: nil, count: n)
        var times = [Int64](repeating: -1, count: n)
        var personal = [PersonalCheck.Prepared?](repeating: nil, count: n)
        let workers = min(n, max(1, ProcessInfo.processInfo.activeProcessorCount))
        hashes.withUnsafeMutableBufferPointer { hb in
            payloads.withUnsafeMutableBufferPointer { pb in
                orgNames.withUnsafeMutableBufferPointer { ob in
                    fields.withUnsafeMutableBufferPointer { fb in
                        times.withUnsafeMutableBufferPointer { tb in
                            personal.withUnsafeMutableBufferPointer { cb in
                                nonisolated(unsafe) let (h, p, o, f, t, c) = (hb, pb, ob, fb, tb, cb)
                                BlockingWorkers.fanOut(workers, name: "verify-prep") { w in
                                    for i in (w * n / workers)..<((w + 1) * n / workers) {
                                        if let pl = try? RecordPayload(bytes: batch[i].payload) {
                                            h[i] = SHA256.hash(pl.content)
                                            // One pass gives the org, the time and the index row.
                                            if let (org, fields) = Entry.indexFields(ofStored: pl.content) {
                                                o[i] = org
                                                t[i] = fields.time
                                                f[i] = fields
                                            } else {
                                                o[i] = CanonicalScan.topLevelString(pl.content, key: "org")
                                            }
                                            if withPersonal {
                                                c[i] = PersonalCheck.prepare(pl.content, action: f[i]?.action)
                                            }
                                            p[i] = pl
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return PreparedBatch(
            seqs: batch.map(\.seq), hashes: hashes, payloads: payloads, orgNames: orgNames, fields: fields,
            times: times,
            personal: personal)
    }

    /// Checks the next records (which must continue from `position`); returns the first failure.
    public mutating func check(_ batch: [StoredRecord]) throws -> VerificationFailure? {
        try check(prepared: Self.prepare(batch, personal: personal != nil))
    }

    /// Checks a prepared batch: the serial part (chains, links, tree, checkpoints).
    public mutating func check(prepared b: PreparedBatch) throws -> VerificationFailure? {
        guard let firstSeq = b.seqs.first else { return nil }
        guard firstSeq == position else {
            return VerificationFailure(
                seq: position, path: store.directory, offset: nil,
                message: "entries are not contiguous (expected \(position), found \(firstSeq))")
        }
        let n = b.seqs.count
        let wantFields = indexDirectory != nil
        let (hashes, payloads, orgNames, fields, times) = (b.hashes, b.payloads, b.orgNames, b.fields, b.times)
        let storedLeaves = tree.size
        let have = storedLeaves > firstSeq ? Int(min(UInt64(n), storedLeaves - firstSeq)) : 0
        // A batch wholly past the tree read at the start (a live daemon appended it since) has
        // no stored leaves to compare: they are all computed below.
        let stored = have > 0 ? try tree.leaves(from: firstSeq, count: have) : []
        for i in 0..<n {
            let seq = b.seqs[i]
            func bad(_ m: String) -> VerificationFailure {
                let pos = store.position(of: seq)
                return VerificationFailure(seq: seq, path: pos.path, offset: pos.offset, message: m)
            }
            guard let p = payloads[i], let org = orgNames[i] else {
                return bad("the stored record is not a valid entry (payload header or org unreadable)")
            }
            let st = orgs[org] ?? .start
            let leaf: Hash
            do {
                leaf = try st.expect(
                    seq: seq, orgSeq: p.orgSeq, prevOrgDelta: p.prevOrgDelta, prev: prev, contentHash: hashes[i]
                ).leafHash
            } catch {
                return bad("org \(org)'s chain is broken: \(error)")
            }
            if i < have, stored[i] != leaf {
                return bad(
                    "entry hash does not match the stored tree leaf: the entry (or an earlier one of its chain) was altered"
                )
            }
            guard times[i] >= 0 else {
                return bad("the entry lacks received_at, category, outcome, action or actor (or one is malformed)")
            }
            guard times[i] >= lastTime else {
                let previous =
                    lastTimeStub.map { "the latest time archived segment \($0)'s stub claims" }
                    ?? "the previous entry's"
                return bad(
                    "received_at \(Timestamp.format(times[i])) is earlier than \(previous) (\(Timestamp.format(lastTime))): received_at never decreases in sequence order"
                )
            }
            lastTime = times[i]
            lastTimeStub = nil
            if let pc = personal, let prepared = b.personal[i], let m = try pc.check(seq: seq, prepared) {
                return bad(m)
            }
            if !collect.isEmpty, let action = fields[i]?.action,
                collect.contains(where: { action.utf8.starts(with: $0) })
            {
                collected.append(p.content)
            }
            orgs[org] = st.advanced(seq: seq, leaf: leaf)
            if wantFields {
                guard let f = fields[i] else {
                    return bad("the entry lacks a field the index needs (time, category, outcome, action or actor)")
                }
                segmentHits[org, default: []].append(IndexHit(seq: seq, orgSeq: p.orgSeq, fields: f))
            }
            prev = leaf
            range.append(leaf)
            if let m = try tiles.append(leaf) { return bad(m) }
            while nextCp < checkpoints.count && checkpoints[nextCp].size == seq + 1 {
                if range.root() != checkpoints[nextCp].root {
                    let from = nextCp > 0 ? checkpoints[nextCp - 1].size : 0
                    return VerificationFailure(
                        seq: from, path: checkpointPath, offset: checkpoints[nextCp].offset,
                        message:
                            "recomputed root at size \(seq + 1) does not match the signed checkpoint: entries \(from)..<\(seq + 1) were altered, inserted or removed (hashes recomputed by someone without the signing key)"
                    )
                }
                nextCp += 1
            }
            position = seq + 1
        }
        return nil
    }
}

/// Recomputes each stored tile level from the leaves and compares it with the tree files.
struct TileChecker {
    let tree: TreeStore
    var pending: [[Hash]] = [[]]
    var counts: [UInt64] = [0]

    init(tree: TreeStore) { self.tree = tree }

    mutating func append(_ leaf: Hash) throws -> String? { try push(0, leaf) }

    private mutating func push(_ k: Int, _ h: Hash) throws -> String? {
        if k >= pending.count {
            pending.append([])
            counts.append(0)
        }
        if k > 0, let s = try tree.stored(k, counts[k]), s != h {
            return
                "stored tree hash \(counts[k]) of level \(k * ChainFormat.tileHeight) does not match the entries beneath it (tree file altered)"
        }
        counts[k] += 1
        pending[k].append(h)
        if pending[k].count == ChainFormat.tileWidth {
            let r = Merkle.root(pending[k][...])
            pending[k].removeAll(keepingCapacity: true)
            return try push(k + 1, r)
        }
        return nil
    }
}
