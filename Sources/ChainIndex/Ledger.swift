import AuditBase
import AuditEntries
import AuditIndex
import Foundation
import LogProofs
import LogTree
import SegmentStore

#if canImport(Glibc)
import Glibc
#endif
/// The log: validated entries in, sequence numbers and hashes out once durable; reads, proofs,
/// checkpoints and org queries (format-spec.md §1 describes the directory).
///
/// The only serial work per entry is building its 113-byte link and hashing it; content hashes
/// arrive precomputed in `PreparedEntry`. One fdatasync covers each group commit.
public final class Ledger: @unchecked Sendable {
    /// The data directory.
    public let directory: String
    /// The checkpoint origin and key name.
    public let origin: String
    /// The public key that checks this log's checkpoints.
    public let verifier: NoteVerifier
    /// Segments.
    public let store: SegmentStore
    /// The Merkle tree.
    public let tree: TreeStore
    /// Signed checkpoints.
    public let checkpoints: CheckpointLog
    /// The org index.
    public let index: OrgIndex
    /// What opening found.
    public let recovery: LedgerRecovery
    let options: LedgerOptions
    private let signer: NoteSigner
    private let lockFD: Int32
    private var queue: GroupCommitQueue<Op, Receipt?>?

    // Commit-thread state.
    private var orgs: [String: OrgPosition] = [:]
    private var lastLeaf: Hash
    /// The newest entry's `received_at` (commit thread): no later entry is stamped earlier.
    private var lastReceivedAt: Int64 = 0
    private var lastCheckpointAt = ContinuousClock.now
    /// The newest checkpoint the signer signed, from its state file.
    private var signed: SignerState?
    private var state = WriteState.accepting
    /// Leaf hashes of durable entries that the tree has not taken yet (it failed to).
    private var unappliedLeaves: [Hash] = []
    private let stateLock = NSLock()
    private var _published = WriteState.accepting
    private var _refused: UInt64 = 0

    // Sealer state.
    private let sealLock = NSLock()
    private var sealedOrgs: [String: (UInt64, UInt64)] = [:]
    private var background: [BackgroundLoop] = []

    enum Op: Sendable {
        case entry(PreparedEntry)
        /// An entry after which a checkpoint is signed at exactly its size (an export's own
        /// audit entry: format-spec.md §9.3).
        case anchor(PreparedEntry)
        case checkpoint
        case maintenance
        case rotate
    }

    /// Opens (creating if needed) the log in `directory`, signing with `signer`, and recovers it.
    ///
    /// Recovery: 1. lock the directory; 2. the segment store cuts the open segment's torn tail;
    /// 3. the tree is cut back to the org-state snapshot taken at the last seal (or, when the
    /// snapshot is missing or damaged, to the state derived from the retired tier's summaries
    /// and the index files; never below what retired segments need: Ledger+Recovery.swift);
    /// 4. entries after it
    /// (normally just the unsealed segments) are replayed: org chains re-derived, leaf hashes
    /// recomputed, the in-memory index rebuilt, missing index files written; 5. the latest
    /// signed checkpoint must match the recovered tree, or opening fails.
    public init(directory: String, signer: NoteSigner, options: LedgerOptions = .init()) throws {
        self.directory = directory
        self.options = options
        self.signer = signer
        try FileOps.makeDirectory(directory)
        lockFD = try FileOps.lockExclusive(DataDirectory(directory).lock)
        do {
            let info = try Self.loadOrCreateInfo(directory: directory, signer: signer)
            origin = info.origin
            verifier = signer.verifier
            let segs = try Self.segmentStore(
                directory, retired: options.retired, options: options.store, readOnly: false)
            store = segs
            let restored = try options.retired.restored(inSegments: DataDirectory(directory).segments)
            let archived = Set(segs.segments().filter { $0.state == .retired }.map(\.segment))
            let idx = try OrgIndex(
                directory: DataDirectory(directory).index, readOnly: false, restored: restored, archived: archived)
            index = idx
            checkpoints = try CheckpointLog(directory: DataDirectory(directory).checkpoints, verifier: signer.verifier)

            for info in store.segments() where info.state == .retired {
                idx.addArchived(try options.retired.summary(of: info))
            }
            let (t, start, snapOrgs) = try Self.recoveryStart(
                directory: directory, store: segs, index: idx, retired: options.retired)
            var orgs: [String: OrgPosition] = [:]
            for (o, (count, last)) in snapOrgs {
                orgs[o] = OrgPosition(count: count, lastSeq: last, lastHash: try t.leaf(last))
            }
            tree = t
            let sealedInfos = store.segments().filter { $0.state == .sealed }
            let sealedEnd = store.segments().filter { $0.state == .sealed || $0.state == .retired }.last?.endSeq ?? 0
            var atSealed = start >= sealedEnd ? snapOrgs : [:]
            var replayed: UInt64 = 0
            var leaves: [Hash] = []
            var prev = start > 0 ? try t.leaf(start - 1) : Hash.zero
            var hits: [(String, IndexHit)] = []
            try segs.scan(from: start) { rec in
                if rec.seq == sealedEnd { atSealed = orgs.mapValues { ($0.count, $0.lastSeq ?? 0) } }
                let p = try RecordPayload(bytes: rec.payload)
                guard let (org, fields) = Entry.indexFields(ofStored: p.content) else {
                    let pos = segs.position(of: rec.seq)
                    throw StoreError(
                        .corrupt, "entry \(rec.seq) is not a valid stored entry", path: pos.path, offset: pos.offset)
                }
                let st = orgs[org] ?? .start
                let leaf: Hash
                do {
                    leaf = try st.expect(
                        seq: rec.seq, orgSeq: p.orgSeq, prevOrgDelta: p.prevOrgDelta, prev: prev,
                        contentHash: SHA256.hash(p.content)
                    ).leafHash
                } catch {
                    let pos = segs.position(of: rec.seq)
                    throw StoreError(
                        .corrupt, "org \(org)'s chain is broken: \(error)", path: pos.path, offset: pos.offset)
                }
                orgs[org] = st.advanced(seq: rec.seq, leaf: leaf)
                leaves.append(leaf)
                prev = leaf
                hits.append((org, IndexHit(seq: rec.seq, orgSeq: p.orgSeq, fields: fields)))
                if leaves.count >= 4096 {
                    try t.append(leaves)
                    leaves.removeAll(keepingCapacity: true)
                }
                replayed += 1
                return true
            }
            try t.append(leaves)
            if start >= sealedEnd {
                atSealed = snapOrgs
            } else if sealedEnd >= segs.endSeq {
                atSealed = orgs.mapValues { ($0.count, $0.lastSeq ?? 0) }
            }
            // Missing or damaged: rewrite it from the state just derived.
            let snapshotMissing = (try? Self.checkedOrgState(DataDirectory(directory).orgState)) ?? nil == nil
            idx.add(hits)
            var rebuilt = 0
            for info in sealedInfos where info.endSeq > start {
                if !idx.hasSealedIndex(info.segment) { rebuilt += 1 }
                try idx.seal(info)
                idx.sealCompleted(info.segment)
            }
            guard t.size == segs.endSeq else {
                throw LedgerError(
                    "tree holds \(t.size) leaves but the segments hold \(segs.endSeq) entries; run `auditctl verify \(directory)`"
                )
            }
            if start < sealedEnd || snapshotMissing {
                try t.sync()
                try Self.saveOrgState(DataDirectory(directory).orgState, end: sealedEnd, orgs: atSealed)
            }
            sealedOrgs = atSealed
            self.orgs = orgs
            lastLeaf = t.size > 0 ? try t.leaf(t.size - 1) : .zero
            lastReceivedAt = try Self.lastReceivedAt(segs, retired: options.retired)
            recovery = LedgerRecovery(store: store.recovery, replayed: replayed, indexesRebuilt: rebuilt)

            if let path = options.signerState, let state = try SignerState.load(path) {
                guard state.origin == origin else {
                    throw LedgerError(
                        "the signer state \(path) is for origin \(state.origin), not this log's \(origin)")
                }
                try state.check(treeSize: t.size, rootAt: { try t.root(at: $0) }, what: "the log in \(directory)")
                signed = state
            }
            if let cp = checkpoints.latest?.checkpoint {
                guard cp.size <= t.size else {
                    throw LedgerError(
                        "the log holds \(t.size) entries but a checkpoint was signed at size \(cp.size): signed entries are missing (truncated or deleted segment); run `auditctl verify \(directory)` and restore from the archive"
                    )
                }
                guard try t.root(at: cp.size) == cp.root else {
                    throw LedgerError(
                        "the tree root at size \(cp.size) does not match the signed checkpoint: entries were altered; run `auditctl verify \(directory)`"
                    )
                }
            }
        } catch {
            Glibc.close(lockFD)
            throw error
        }
        store.onSealed = { [unowned self] info in try self.sealed(info) }
        queue = GroupCommitQueue(name: "auditlog-commit", maxGroup: options.maxGroup) { [unowned self] ops in
            try self.commit(ops)
        }
        if options.background {
            background.append(
                BackgroundLoop(name: "auditlog-ticker", interval: 0.2) { [weak self] in
                    self?.queue?.submit([.maintenance]) { _ in }
                })
            // The sealer yields to writers; when it falls behind, writers seal themselves.
            background.append(
                BackgroundLoop(name: "auditlog-sealer", interval: 0.1, nice: 5) { [weak self] in
                    guard let self, self.store.hasRotated else { return }
                    do { try self.store.sealRotated() } catch { self.reportBackground(error) }
                })
        }
    }

    private let bgErrorLock = NSLock()
    private var _backgroundError: Error?
    /// The last error a background job met (sealing), if any.
    public var backgroundError: Error? { bgErrorLock.withLock { _backgroundError } }
    private func reportBackground(_ e: Error) { bgErrorLock.withLock { _backgroundError = e } }

    // MARK: Writing

    /// Appends entries and returns once they are durable, with their receipts.
    public func append(_ entries: [PreparedEntry]) async throws -> [Receipt] {
        guard let queue else { throw GroupCommitStopped() }
        return try await queue.submit(entries.map { .entry($0) }).compactMap { $0 }
    }

    /// Appends entries, blocking this thread until they are durable.
    public func appendAndWait(_ entries: [PreparedEntry]) throws -> [Receipt] {
        guard let queue else { throw GroupCommitStopped() }
        return try queue.submitAndWait(entries.map { .entry($0) }).compactMap { $0 }
    }

    /// Appends entries and calls `done` on the commit thread once they are durable.
    public func append(_ entries: [PreparedEntry], done: @escaping @Sendable (Result<[Receipt], Error>) -> Void) {
        guard let queue else { return done(.failure(GroupCommitStopped())) }
        queue.submit(entries.map { .entry($0) }) { r in done(r.map { $0.compactMap { $0 } }) }
    }

    /// Appends `entry` and signs a checkpoint at exactly its size (it is the last leaf), before
    /// any larger one: an export's own audit entry, which the export's proofs end at.
    public func appendAnchored(_ entry: PreparedEntry) throws -> (Receipt, SignedCheckpoint) {
        guard let queue else { throw GroupCommitStopped() }
        guard let r = try queue.submitAndWait([.anchor(entry)]).first ?? nil else {
            throw LedgerError("the entry was not stored")
        }
        guard let cp = try checkpoints.first(atLeast: r.seq + 1, verifier: verifier), cp.checkpoint.size == r.seq + 1
        else {
            throw LedgerError("entry \(r.seq) is stored, but no checkpoint could be signed at its size: \(writeState)")
        }
        return (r, cp)
    }

    /// Signs a checkpoint of the current tree now (if it grew since the last one).
    public func checkpointNow() throws {
        guard let queue else { throw GroupCommitStopped() }
        _ = try queue.submitAndWait([.checkpoint])
        let state = writeState
        if !state.isAccepting, (latestCheckpoint?.checkpoint.size ?? 0) < size {
            throw LedgerError("no checkpoint was signed: \(state)")
        }
    }

    /// Whether the log takes writes now.
    public var writeState: WriteState { stateLock.withLock { _published } }
    /// Entries refused because writes were suspended or stopped.
    public var refusedEntries: UInt64 { stateLock.withLock { _refused } }

    private func publish(refused: Int = 0) {
        let s = state
        stateLock.withLock {
            _published = s
            _refused += UInt64(refused)
        }
    }

    /// One group commit (commit thread only).
    ///
    /// 1. retry deferred work if writes are suspended, refusing the group's entries if it
    ///    still fails; 2. build each entry's link and leaf hash; 3. write one block;
    ///    4. fdatasync (a failure stops writes until a restart, and fails the group: nothing
    ///    was acknowledged); 5. from here the entries are durable and get their receipts
    ///    whatever follows: append the leaves to the tree, rotate, checkpoint; a failure of
    ///    any of these suspends writes until a retry succeeds.
    private func commit(_ ops: [Op]) throws -> [Receipt?] {
        let entries = ops.reduce(0) {
            switch $1 {
            case .entry, .anchor: return $0 + 1
            default: return $0
            }
        }
        if case .suspended = state { retryDeferredWork() }
        guard state.isAccepting else {
            publish(refused: entries)
            throw LedgerError(entries > 0 ? "not stored: \(state)" : "\(state)")
        }
        var out: [Receipt?] = []
        out.reserveCapacity(ops.count)
        var records: [StoreRecord] = []
        var leaves: [Hash] = []
        var hits: [(String, IndexHit)] = []
        var overlay: [String: OrgPosition] = [:]
        var seq = store.nextSeq
        var prev = lastLeaf
        var time = lastReceivedAt
        var anchors: [UInt64] = []
        var wantCheckpoint = false
        var maintenance = false
        var rotate = false
        for op in ops {
            switch op {
            case .entry(var e), .anchor(var e):
                if e.fields.time < time, let later = e.restamped(time) { e = later }
                time = max(time, e.fields.time)
                if case .anchor = op { anchors.append(seq + 1) }
                let st = overlay[e.org] ?? orgs[e.org] ?? .start
                let (orgSeq, prevOrgDelta) = st.header(at: seq)
                let leaf = st.link(seq: seq, prev: prev, contentHash: e.contentHash).leafHash
                records.append(
                    StoreRecord(
                        key: RecordPayload.groupKey(e.org),
                        payload: RecordPayload(orgSeq: orgSeq, prevOrgDelta: prevOrgDelta, content: e.content).bytes))
                leaves.append(leaf)
                hits.append((e.org, IndexHit(seq: seq, orgSeq: orgSeq, fields: e.fields)))
                overlay[e.org] = st.advanced(seq: seq, leaf: leaf)
                out.append(Receipt(seq: seq, hash: leaf, orgSeq: orgSeq))
                prev = leaf
                seq += 1
            case .checkpoint:
                wantCheckpoint = true
                out.append(nil)
            case .maintenance:
                maintenance = true
                out.append(nil)
            case .rotate:
                rotate = true
                out.append(nil)
            }
        }
        if !records.isEmpty {
            let started = ContinuousClock.now
            // A failed write leaves nothing behind (the store cuts its partial block): the
            // entries are not stored, and the next group may try again.
            try store.write(records)
            do {
                try store.sync()
            } catch {
                state.syncFailed(error)
                publish()
                throw error
            }
            // Durable: everything below may fail without un-acknowledging these entries.
            options.onCommit?(records.count, ContinuousClock.now - started)
            for (k, v) in overlay { orgs[k] = v }
            lastLeaf = prev
            lastReceivedAt = time
            index.add(hits)
            unappliedLeaves.append(contentsOf: leaves)
        }
        deferred {
            try applyLeaves()
            if !records.isEmpty { try store.rotateIfFull() }
            // Writes outrunning the sealer: seal here, so unsealed segments (and their
            // in-memory index) stay bounded. These entries are durable already; their acks
            // wait for the seal, which slows writers to the sealer's pace (back-pressure).
            if store.rotatedBacklogFull { try store.sealRotated() }
            if maintenance { try store.rotateIfOld() }
            if rotate { try store.rotate() }
            for size in anchors { try signCheckpoint(size: size) }
            let latest = checkpoints.latest?.checkpoint.size ?? 0
            if tree.size > latest
                && (wantCheckpoint || ContinuousClock.now - lastCheckpointAt >= options.checkpointInterval)
            {
                try signCheckpoint()
            }
        }
        return out
    }

    /// Runs work that follows a durable sync; a failure suspends writes instead of failing
    /// the group.
    private func deferred(_ work: () throws -> Void) {
        do { try work() } catch {
            state.deferredWorkFailed(error)
            publish()
        }
    }

    /// Retries what a suspension left undone: the tree's missing leaves, a due rotation, a
    /// checkpoint. Writes resume once all of it succeeds.
    private func retryDeferredWork() {
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

    private func applyLeaves() throws {
        guard !unappliedLeaves.isEmpty else { return }
        try tree.append(unappliedLeaves)
        unappliedLeaves.removeAll(keepingCapacity: true)
    }

    /// Signs a checkpoint of the whole tree: 1. check it extends the newest one the signer
    /// signed (never smaller, never inconsistent); 2. record it as the signer's newest,
    /// durably; 3. sign it and append it to the checkpoint log.
    private func signCheckpoint(size: UInt64? = nil) throws {
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
        try checkpoints.append(SignedCheckpoint(checkpoint: cp, note: try signer.sign(cp.text)))
        lastCheckpointAt = .now
    }

    // MARK: Sealing

    private func sealed(_ info: SegmentInfo) throws {
        try tree.sync()
        let last = try index.seal(info)
        let snapshot: [String: (UInt64, UInt64)] = sealLock.withLock {
            for (o, h) in last { sealedOrgs[o] = (h.orgSeq + 1, h.seq) }
            return sealedOrgs
        }
        try Self.saveOrgState(DataDirectory(directory).orgState, end: info.endSeq, orgs: snapshot)
        index.sealCompleted(info.segment)
        queue?.submit([.checkpoint]) { _ in }
    }

    /// Rotates the open segment (if it holds anything) and seals every rotated segment now.
    public func sealNow() throws {
        guard let queue else { throw GroupCommitStopped() }
        _ = try queue.submitAndWait([.rotate])
        try store.sealRotated()
        try checkpointNow()
    }

    /// Stops background work, commits and checkpoints what is pending, seals rotated segments,
    /// syncs the tree and releases the directory. The ledger cannot be used afterwards.
    ///
    /// Each step is tried even when an earlier one failed (on a full disk the seal may not fit
    /// while the final checkpoint does). Returns the steps that failed without harm (rotated
    /// segments left unsealed are durable and are sealed at the next start); throws when the
    /// log could not be closed with a checkpoint covering every entry.
    @discardableResult
    public func close() throws -> [Error] {
        for b in background { b.stop() }
        background.removeAll()
        guard let q = queue else { return [] }
        _ = try? q.submitAndWait([.checkpoint])
        q.shutdown()
        queue = nil
        defer { Glibc.close(lockFD) }
        var problems: [Error] = []
        func attempt(_ step: () throws -> Void) {
            do { try step() } catch { problems.append(error) }
        }
        attempt { try store.sealRotated() }
        attempt { try applyLeaves() }
        attempt { try tree.sync() }
        attempt { try index.close() }
        attempt { try signCheckpoint() }
        if !unappliedLeaves.isEmpty || (checkpoints.latest?.checkpoint.size ?? 0) < tree.size {
            throw LedgerError(
                "closed without a final checkpoint over all \(store.nextSeq) entries (every acknowledged entry is durable and is covered at the next start): \(problems.map { "\($0)" }.joined(separator: "; "))"
            )
        }
        return problems
    }

    /// Signs `text` (ending in a newline) with the log's key: bundle manifests and tombstones.
    public func sign(_ text: String) throws -> String { try signer.sign(text) }
}
