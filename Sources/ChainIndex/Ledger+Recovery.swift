import AuditBase
import AuditEntries
import AuditIndex
import Foundation
import LogProofs
import LogTree
import SegmentStore

/// Where recovery starts replaying (format-spec.md §7.2): the org-state snapshot if it is
/// whole, else the same state derived from what the directory still holds. The tree is never
/// cut below what archived segments need: their entries cannot be replayed from the hot tier.
extension Ledger {
    /// The tree (cut back to the start), the sequence number to replay from, and every org's
    /// (count, last sequence number) there.
    static func recoveryStart(
        directory: String, store: SegmentStore, index: OrgIndex, retired: any RetiredTier
    ) throws -> (TreeStore, UInt64, [String: OrgMark]) {
        let path = DataDirectory(directory).orgState
        let segments = store.segments()
        // The end of the archived prefix: below it, only the tree holds the leaves.
        let archivedEnd = segments.prefix { $0.state == .retired }.last?.endSeq ?? 0
        var (end, orgs) = try loadOrgState(path)
        if end == 0 || end < archivedEnd {
            // Missing or damaged snapshot: derive it. It is derived data, so this loses nothing.
            (end, orgs) = try deriveOrgState(segments: segments, index: index, retired: retired)
        }
        let tree = try TreeStore(directory: DataDirectory(directory).tree, maxSize: end)
        if tree.size >= end { return (tree, end, orgs) }
        // The tree lost hashes it had synced. Replay what the hot tier holds, from the end of
        // the archived prefix; the leaves below it are only in the tree and the bundles.
        guard tree.size >= archivedEnd else {
            throw AuditError(
                "the tree files hold \(tree.size) leaves, but archived segments need the first \(archivedEnd): the missing leaf hashes are in the bundles' leaves.hashes (restore the segments with `auditctl archive restore`, or the tree directory from a backup); nothing was cut"
            )
        }
        let (_, atArchived) = try deriveOrgState(
            segments: Array(segments.prefix { $0.state == .retired }), index: index, retired: retired)
        return (try TreeStore(directory: DataDirectory(directory).tree, maxSize: archivedEnd), archivedEnd, atArchived)
    }

    /// Every org's (count, last sequence number) at the end of the sealed and archived
    /// segments, oldest first, from the retired tier's summaries and the sealed segments' index files.
    /// Stops before the first sealed segment without a readable index file (replay covers it).
    static func deriveOrgState(
        segments: [SegmentInfo], index: OrgIndex, retired: any RetiredTier
    ) throws -> (UInt64, [String: OrgMark]) {
        var end: UInt64 = 0
        var orgs: [String: OrgMark] = [:]
        for info in segments {
            switch info.state {
            case .retired:
                for o in try retired.summary(of: info).orgs {
                    orgs[o.org] = OrgMark(count: o.count_after, lastSeq: o.last_seq)
                }
            case .sealed:
                guard let summary = try? index.orgStates(segment: info.segment) else { return (end, orgs) }
                for (o, s) in summary { orgs[o] = s }
            case .rotated, .open:
                return (end, orgs)
            }
            end = info.endSeq
        }
        return (end, orgs)
    }

    /// The newest entry's `received_at`, which no later entry may precede (format-spec.md
    /// §5.1): read from the entry, or from the retired tier's summary when it left.
    static func lastReceivedAt(_ segs: SegmentStore, retired: any RetiredTier) throws -> Int64 {
        guard segs.endSeq > 0 else { return 0 }
        if let last = segs.segments().last(where: { $0.firstSeq < $0.endSeq }), last.state == .retired {
            return try retired.summary(of: last).orgs.map(\.max_time).max() ?? 0
        }
        let p = try RecordPayload(bytes: try segs.read(seq: segs.endSeq - 1).payload)
        return Entry.indexFields(ofStored: p.content)?.fields.time ?? 0
    }

    /// What replay recovered: the tree, every org's position, the state at the last seal, the
    /// last leaf and `received_at`.
    struct Replayed {
        var tree: TreeStore
        var orgs: [String: OrgPosition]
        var sealedOrgs: [String: OrgMark]
        var lastLeaf: Hash
        var lastReceivedAt: Int64
        var recovery: LedgerRecovery
    }

    /// Recovery's steps 3 and 4 (`init`): the tree cut back to where replay starts, then every
    /// entry after it re-read, its org chain re-derived by the chain rule, its leaf recomputed,
    /// its index row rebuilt; index files the sealed segments lack are written, and the
    /// org-state snapshot rewritten when it was missing, damaged or behind.
    static func replay(
        directory: String, store segs: SegmentStore, index idx: OrgIndex, retired: any RetiredTier
    ) throws -> Replayed {
        let (t, start, snapOrgs) = try Self.recoveryStart(
            directory: directory, store: segs, index: idx, retired: retired)
        var orgs: [String: OrgPosition] = [:]
        for (o, m) in snapOrgs { orgs[o] = OrgPosition(m, lastHash: try t.leaf(m.lastSeq)) }
        let sealedInfos = segs.segments().filter { $0.state == .sealed }
        let sealedEnd = segs.sealedEnd
        var atSealed = start >= sealedEnd ? snapOrgs : [:]
        var replayed: UInt64 = 0
        var leaves: [Hash] = []
        var prev = start > 0 ? try t.leaf(start - 1) : Hash.zero
        var hits: [(String, IndexHit)] = []
        try segs.scan(from: start) { rec in
            if rec.seq == sealedEnd { atSealed = orgs.compactMapValues(\.mark) }
            let p = try RecordPayload(bytes: rec.payload)
            guard let (org, fields) = Entry.indexFields(ofStored: p.content) else {
                let pos = segs.position(of: rec.seq)
                throw AuditError(
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
                throw AuditError(
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
        // In the files too: a tool reading them finds every entry the segments hold.
        try t.flush()
        if start >= sealedEnd {
            atSealed = snapOrgs
        } else if sealedEnd >= segs.endSeq {
            atSealed = orgs.compactMapValues(\.mark)
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
            throw AuditError(
                "tree holds \(t.size) leaves but the segments hold \(segs.endSeq) entries; run `auditctl verify \(directory)`"
            )
        }
        if start < sealedEnd || snapshotMissing {
            try t.sync()
            try Self.saveOrgState(DataDirectory(directory).orgState, end: sealedEnd, orgs: atSealed)
        }
        return Replayed(
            tree: t, orgs: orgs, sealedOrgs: atSealed, lastLeaf: t.size > 0 ? try t.leaf(t.size - 1) : .zero,
            lastReceivedAt: try Self.lastReceivedAt(segs, retired: retired),
            recovery: LedgerRecovery(store: segs.recovery, replayed: replayed, indexesRebuilt: rebuilt))
    }

    /// Recovery's step 5 (`init`): the signer's record of the newest checkpoint it signed, and
    /// the newest checkpoint in the log, must both match the recovered tree.
    static func checkSigned(
        tree t: TreeStore, checkpoints: CheckpointLog, signerState: String?, origin: String, directory: String
    ) throws -> SignerState? {
        var signed: SignerState?
        if let path = signerState, let state = try SignerState.load(path) {
            guard state.origin == origin else {
                throw AuditError(
                    "the signer state \(path) is for origin \(state.origin), not this log's \(origin)")
            }
            try state.check(treeSize: t.size, rootAt: { try t.root(at: $0) }, what: "the log in \(directory)")
            signed = state
        }
        if let cp = checkpoints.latest?.checkpoint {
            guard cp.size <= t.size else {
                throw AuditError(
                    "the log holds \(t.size) entries but a checkpoint was signed at size \(cp.size): signed entries are missing (truncated or deleted segment); run `auditctl verify \(directory)` and restore from the archive"
                )
            }
            guard try t.root(at: cp.size) == cp.root else {
                throw AuditError(
                    "the tree root at size \(cp.size) does not match the signed checkpoint: entries were altered; run `auditctl verify \(directory)`"
                )
            }
        }
        return signed
    }
}
