import AuditBase
import AuditEntries
import AuditIndex
import Foundation
import LogProofs
import LogTree
import PersonalStore
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
    /// The keys that check this log's checkpoints: its first and every succession since
    /// (format-spec.md §8.8); a rotation adds one.
    public var verifier: LogKeys { keyLock.withLock { keys } }
    let keyLock = NSLock()
    /// Under `keyLock`.
    var keys: LogKeys
    /// Segments.
    package let store: SegmentStore
    /// The Merkle tree.
    package let tree: TreeStore
    /// Signed checkpoints.
    package let checkpoints: CheckpointLog
    /// The org index.
    package let index: OrgIndex
    /// The values that personal fields' commitments stand for (format-spec.md §5.4).
    public let personal: PersonalStore
    /// Entries at or above this seq commit every personal field; below it they may name
    /// people in the clear (log.json's `committing_from`; every entry under `clear`).
    let clearBelow: UInt64
    /// Whether new entries' personal fields are committed (the log's recorded setting).
    public let protectsPersonalFields: Bool
    /// What opening found.
    public let recovery: LedgerRecovery
    /// What opening did about an erasure a crash interrupted, if one was.
    public private(set) var erasureNote: String?
    let options: LedgerOptions
    /// The log's key; nil for a follower (a read replica), which signs nothing and takes
    /// entries only verbatim from the log it follows (`appendVerbatim`).
    /// Written only by the commit thread (a rotation), read by it and by `sign` under `keyLock`.
    var signer: NoteSigner?
    /// The key a rotation replaced, still signing checkpoints up to the given size (in memory
    /// only: after a restart the new key alone signs what is left of the grace range).
    var retiring: (signer: NoteSigner, graceEnd: UInt64)?
    /// Why the last handover's entry could not be built (under `keyLock`).
    var handOverFailure: Error?
    private let lockFD: Int32
    var queue: GroupCommitQueue<Op, Receipt?>?

    // Commit-thread state.
    /// Positions, the last leaf and the last `received_at` of the durable entries.
    var sequencer: Sequencer
    var lastCheckpointAt = ContinuousClock.now
    /// The newest checkpoint the signer signed, from its state file.
    var signed: SignerState?
    var state = WriteState.accepting
    /// Leaf hashes of durable entries that the tree has not taken yet (it failed to).
    var unappliedLeaves: [Hash] = []
    /// The last group's bytes of records: the next group's block reserves as many.
    var groupBytes = 0
    private let stateLock = NSLock()
    private var _published = WriteState.accepting
    private var _refused: UInt64 = 0

    /// One erasure at a time.
    let erasureLock = NSLock()

    // Sealer state.
    let sealLock = NSLock()
    var sealedOrgs: [String: OrgMark] = [:]
    var background: [BackgroundLoop] = []
    /// Periodic work the last groups made due (commit thread).
    var due = MaintenanceDue()
    /// The last groups' sizes and write-and-sync times, for `options.onCommit` after the acks.
    var commitTimes: [(count: Int, took: Duration)] = []

    /// What the commit thread is asked to do: entries, and work asked for by name.
    enum Op: Sendable {
        case entry(PreparedEntry)
        /// An entry after which a checkpoint is signed at exactly its size (an export's own
        /// audit entry: format-spec.md §9.3).
        case anchor(PreparedEntry)
        /// A key handover: its entry (holding the statement, signed once its seq is known) and,
        /// once durable, the new key takes over (`completeHandOver`).
        case handOver(HandOverPlan)
        case checkpoint
        case maintenance
        case rotate
        /// An entry of the log a follower follows, exactly as that log stored it.
        case verbatim(StoredRecord)
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
    public convenience init(directory: String, signer: NoteSigner, options: LedgerOptions = .init()) throws {
        try self.init(directory: directory, signer: signer, verifier: LogKeys(signer.verifier), options: options)
    }

    /// Opens (creating if needed) a follower of the log whose checkpoints `verifier` checks:
    /// a read replica's copy. It holds the other log's entries byte for byte, each checked by
    /// the chain rule as it arrives (`appendVerbatim`), and only that log's checkpoints, each
    /// checked against its own tree (`adopt`); it signs nothing and takes no other writes.
    public convenience init(
        following directory: String, verifier: LogKeys, options: LedgerOptions = .init()
    )
        throws
    {
        var o = options
        o.signerState = nil
        try self.init(directory: directory, signer: nil, verifier: verifier, options: o)
    }

    private init(directory: String, signer: NoteSigner?, verifier: LogKeys, options: LedgerOptions) throws {
        self.directory = directory
        self.options = options
        self.signer = signer
        try FileOps.makeDirectory(directory)
        lockFD = try FileOps.lockExclusive(DataDirectory(directory).lock)
        do {
            var info = try Self.loadOrCreateInfo(
                directory: directory, verifier: signer?.verifier ?? verifier.original,
                personalFields: signer == nil ? nil : options.protectPersonalFields, keys: options.keys)
            protectsPersonalFields = info.personal_fields == "commit"
            origin = info.origin
            // A follower trusts the key it was given, and the successions it followed from it;
            // the log's own keys are its record.
            keys =
                signer == nil
                ? try Self.keys(directory: directory, trusting: verifier.original) : try info.keys()
            if let signer, signer.verifier != keys.current {
                throw AuditError(
                    "signing key \(signer.verifier.text) was handed on to \(keys.current.text) (log.json's key_successions): start with the log's current key"
                )
            }
            let segs = try Self.segmentStore(
                directory, retired: options.retired, options: options.store, readOnly: false)
            store = segs
            if protectsPersonalFields, signer != nil, info.committing_from == nil || info.format < 3 {
                if info.committing_from == nil { info.committing_from = segs.nextSeq }
                // A log that committed under format 2 gets format 3's groups (§5.4.1) from now on.
                info.format = max(info.format, 3)
                try Self.writeInfo(info, directory: directory)
            }
            // Entries below it may name people in the clear (all of them under `clear`).
            clearBelow = protectsPersonalFields ? info.committing_from ?? segs.nextSeq : .max
            let restored = try options.retired.restored(inSegments: DataDirectory(directory).segments)
            let archived = Set(segs.segments().filter { $0.state == .retired }.map(\.segment))
            let idx = try OrgIndex(
                directory: DataDirectory(directory).index, readOnly: false, restored: restored, archived: archived)
            index = idx
            checkpoints = try CheckpointLog(directory: DataDirectory(directory).checkpoints, verifier: keys)

            for info in store.segments() where info.state == .retired {
                idx.addArchived(try options.retired.summary(of: info))
            }
            let r = try Self.replay(directory: directory, store: segs, index: idx, retired: options.retired)
            // Rows of entries the log does not hold (a crash after the values' sync and before
            // the segment's) are cut: their seqs will be other entries'.
            personal = try PersonalStore(directory: DataDirectory(directory).personal)
            try personal.cut(from: segs.nextSeq)
            tree = r.tree
            sequencer = Sequencer(orgs: r.orgs, lastLeaf: r.lastLeaf, lastReceivedAt: r.lastReceivedAt)
            sealedOrgs = r.sealedOrgs
            recovery = r.recovery
            signed = try Self.checkSigned(
                tree: r.tree, checkpoints: checkpoints, signerState: options.signerState, origin: origin,
                directory: directory)
        } catch {
            Glibc.close(lockFD)
            throw error
        }
        do { erasureNote = try completeErasure() } catch {
            Glibc.close(lockFD)
            throw error
        }
        store.onSealed = { [unowned self] info in try self.sealed(info) }
        queue = .batches(
            name: "auditlog-commit", maxGroup: options.maxGroup,
            // Weak too: a queue its ledger let go of still commits what was pending, and
            // answers it with an error if the ledger is gone.
            body: { [weak self] ops in
                guard let self else { throw GroupCommitStopped() }
                return try self.commit(ops)
            },
            // Weak: once the acks are out, the last owner may let go of a ledger it did not
            // close (a test's stand-in for a crash); the work that follows is then dropped.
            afterAcks: { [weak self] in self?.maintain() })
        if options.background {
            background.append(
                BackgroundLoop(name: "auditlog-ticker", interval: 0.2) { [weak self] in self?.tick() })
            background.append(
                BackgroundLoop(name: "auditlog-sealer", interval: 0.1, nice: options.sealerNice) { [weak self] in
                    self?.sealRotated()
                })
        }
    }

    /// The sealer's nice value (`LedgerOptions.sealerNice`), for a sealer run by the caller.
    public var sealerNice: Int32 { options.sealerNice }

    private let bgErrorLock = NSLock()
    private var _backgroundError: Error?
    /// The last error a background job met (sealing), if any.
    public var backgroundError: Error? { bgErrorLock.withLock { _backgroundError } }
    func reportBackground(_ e: Error) { bgErrorLock.withLock { _backgroundError = e } }

    // MARK: Writing

    /// Whether this is a follower (a read replica's copy of another log): it takes no writes.
    public var isFollower: Bool { signer == nil }

    /// What `Entry.prepare` commits personal fields with, when this log protects them.
    public var subjectKeys: SubjectKeys? { protectsPersonalFields && !isFollower ? personal : nil }

    /// The error every write to a follower meets.
    static let followerRefusal = AuditError(
        .invalidArgument, "this log is a read replica: it takes no writes (send them to the primary auditd)")

    /// The operations appending `entries` takes, each entry moved out of the array (a copy
    /// is a retain of each string and array it holds).
    static func ops(_ entries: consuming [PreparedEntry]) -> [Op] {
        let n = entries.count
        // Filled from the back as `popLast` gives them up (`reverse()` afterwards copied each
        // operation, and destroyed the copy).
        return [Op](unsafeUninitializedCapacity: n) { buf, count in
            var i = n
            while i > 0, let e = entries.popLast() {
                i -= 1
                buf.initializeElement(at: i, to: .entry(e))
            }
            count = n
        }
    }

    /// Appends entries and returns once they are durable, with their receipts.
    public func append(_ entries: consuming [PreparedEntry]) async throws -> [Receipt] {
        guard !isFollower else { throw Self.followerRefusal }
        guard let queue else { throw GroupCommitStopped() }
        return try await queue.submit(Self.ops(entries)).compactMap { $0 }
    }

    /// Appends entries, blocking this thread until they are durable.
    public func appendAndWait(_ entries: consuming [PreparedEntry]) throws -> [Receipt] {
        guard !isFollower else { throw Self.followerRefusal }
        guard let queue else { throw GroupCommitStopped() }
        return try queue.submitAndWait(Self.ops(entries)).compactMap { $0 }
    }

    /// Appends entries and calls `done` once they are durable: on the commit thread or, with
    /// `inline` when nothing else is committing, on this one before returning (a lone writer's
    /// fast lane: one write, one fdatasync, no thread hand-off). `inline` is for a caller that
    /// holds no lock of the log's and would only wait meanwhile (`GroupCommitQueue`).
    public func append(
        _ entries: consuming [PreparedEntry], inline: Bool = false,
        done: @escaping @Sendable (Result<[Receipt], Error>) -> Void
    ) {
        guard !isFollower else { return done(.failure(Self.followerRefusal)) }
        guard let queue else { return done(.failure(GroupCommitStopped())) }
        queue.submit(Self.ops(entries), inline: inline) { r in done(r.map { $0.compactMap { $0 } }) }
    }

    /// Appends `entry` and signs a checkpoint at exactly its size (it is the last leaf), before
    /// any larger one: an export's own audit entry, which the export's proofs end at.
    public func appendAnchored(_ entry: PreparedEntry) throws -> (Receipt, SignedCheckpoint) {
        guard !isFollower else { throw Self.followerRefusal }
        guard let queue else { throw GroupCommitStopped() }
        guard let r = try queue.submitAndWait([.anchor(entry)]).first ?? nil else {
            throw AuditError("the entry was not stored")
        }
        guard let cp = try checkpoints.first(atLeast: r.seq + 1, verifier: verifier), cp.checkpoint.size == r.seq + 1
        else {
            throw AuditError("entry \(r.seq) is stored, but no checkpoint could be signed at its size: \(writeState)")
        }
        return (r, cp)
    }

    /// A follower's entries: records of the log it follows, the next ones in order, stored
    /// byte for byte once each passes the chain rule (its org position, its link to the entry
    /// before it); returns when they are durable. One that does not continue the log refuses
    /// the whole call, and nothing of it is stored.
    public func appendVerbatim(_ records: [StoredRecord]) throws {
        guard isFollower else {
            throw AuditError(.invalidArgument, "only a follower takes entries verbatim; a primary sequences its own")
        }
        guard let queue else { throw GroupCommitStopped() }
        _ = try queue.submitAndWait(records.map { .verbatim($0) })
    }

    /// Signs a checkpoint of the current tree now (if it grew since the last one).
    public func checkpointNow() throws {
        guard let queue else { throw GroupCommitStopped() }
        _ = try queue.submitAndWait([.checkpoint])
        let state = writeState
        if !state.isAccepting, (latestCheckpoint?.checkpoint.size ?? 0) < size {
            throw AuditError("no checkpoint was signed: \(state)")
        }
    }

    /// Whether the log takes writes now.
    public var writeState: WriteState { stateLock.withLock { _published } }
    /// Entries refused because writes were suspended or stopped.
    public var refusedEntries: UInt64 { stateLock.withLock { _refused } }

    func publish(refused: Int = 0) {
        let s = state
        stateLock.withLock {
            _published = s
            _refused += UInt64(refused)
        }
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
        if !isFollower { _ = try? q.submitAndWait([.checkpoint]) }
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
        // A follower signs nothing: its newest checkpoint is the newest one it adopted.
        if !unappliedLeaves.isEmpty || (!isFollower && (checkpoints.latest?.checkpoint.size ?? 0) < tree.size) {
            throw AuditError(
                "closed without a final checkpoint over all \(store.nextSeq) entries (every acknowledged entry is durable and is covered at the next start): \(problems.map { "\($0)" }.joined(separator: "; "))"
            )
        }
        return problems
    }

    /// Signs `text` (ending in a newline) with the log's key: bundle manifests and tombstones.
    public func sign(_ text: String) throws -> String {
        guard let signer = keyLock.withLock({ signer }) else { throw Self.followerRefusal }
        return try signer.sign(text)
    }
}
