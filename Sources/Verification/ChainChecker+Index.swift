import Archive
import AuditBase
import AuditEntries
import AuditIndex
import Foundation
import LogTree
import SegmentStore

/// Index files are derived data, and checked as such (format-spec.md §10): every row of a
/// sealed segment's index file must say exactly what the entry it points to says, and every
/// entry of the segment must have its row. A row edited to hide an entry from a filtered
/// query (denied → success, say) is found even with its checksums recomputed.
extension ChainChecker {
    /// The index file of a segment whose entries are checked from `start` on, read to be
    /// compared with its entries as they are prepared: a sealed segment's, checked from its
    /// first entry. A missing index file is not a failure: it is rebuilt at the next start.
    static func loadIndex(_ info: SegmentInfo, from start: UInt64, directory: String?) -> SealedIndexRows? {
        guard info.state == .sealed, info.firstSeq >= start, let path = indexPath(info, directory),
            FileOps.exists(path)
        else { return nil }
        return SealedIndexRows(loading: path, segment: info.segment, firstSeq: info.firstSeq, endSeq: info.endSeq)
    }

    /// A segment starts, with its index file as `loadIndex` read it (nil: none to compare).
    mutating func startIndex(_ info: SegmentInfo, rows: SealedIndexRows?) {
        indexRows = position == info.firstSeq ? rows : nil
    }

    /// A segment's entries are all checked: the first difference from its index file, or a
    /// row no entry called for. Not a failure when the archiver removed the file while it was
    /// being read (the segment's stub exists by then, and the bundle carries its own copy,
    /// checked when the bundle is).
    mutating func finishIndex(_ info: SegmentInfo) -> VerificationFailure? {
        defer { indexRows = nil }
        guard position == info.endSeq, let path = indexPath(info), let failure = indexRows?.finish() else { return nil }
        if !FileOps.exists(path), FileOps.exists(store.directory + "/" + ArchivedStub.fileName(info.segment)) {
            return nil
        }
        return failure
    }

    func indexPath(_ info: SegmentInfo) -> String? { Self.indexPath(info, indexDirectory) }

    /// Where segment `info`'s index file is under index directory `directory` (nil: none given).
    static func indexPath(_ info: SegmentInfo, _ directory: String?) -> String? {
        directory.map { $0 + "/" + OrgIndex.fileName(info.segment) }
    }

    /// Compares the org-state snapshot with the orgs' state after the entries checked so far
    /// (the checker must stand at the snapshot's `end`).
    public func checkOrgState(_ path: String, orgs snapshot: [String: OrgMark]) -> VerificationFailure? {
        for (org, st) in orgs.all {
            guard let m = snapshot[org], m == st.mark else {
                return VerificationFailure(
                    seq: st.lastSeq, path: path, offset: nil,
                    message:
                        "org-state snapshot says org \(org) has \(snapshot[org].map { "\($0.count) entries, the last at \($0.lastSeq)" } ?? "nothing"), the entries say \(st.count), the last at \(st.lastSeq.map(String.init) ?? "none")"
                )
            }
        }
        for org in snapshot.keys where orgs.slot(org) == nil {
            return VerificationFailure(
                seq: nil, path: path, offset: nil,
                message: "org-state snapshot lists org \(org), which has no entry before its end")
        }
        return nil
    }
}
