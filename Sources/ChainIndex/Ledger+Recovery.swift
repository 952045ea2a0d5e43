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
    ) throws -> (TreeStore, UInt64, [String: (UInt64, UInt64)]) {
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
            throw LedgerError(
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
    ) throws -> (UInt64, [String: (UInt64, UInt64)]) {
        var end: UInt64 = 0
        var orgs: [String: (UInt64, UInt64)] = [:]
        for info in segments {
            switch info.state {
            case .retired:
                for o in try retired.summary(of: info).orgs { orgs[o.org] = (o.count_after, o.last_seq) }
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
}
