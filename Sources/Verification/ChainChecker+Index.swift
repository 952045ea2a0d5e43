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
    /// A segment starts: a sealed one checked from its first entry has its index file read,
    /// to be compared with its entries as they are checked. A missing index file is not a
    /// failure: it is rebuilt at the next start.
    mutating func startIndex(_ info: SegmentInfo) {
        orgs.newSegment()
        indexRows = nil
        guard info.state == .sealed, position == info.firstSeq, let path = indexPath(info), FileOps.exists(path)
        else { return }
        indexRows = SealedIndexRows(loading: path, segment: info.segment, firstSeq: info.firstSeq, endSeq: info.endSeq)
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

    func indexPath(_ info: SegmentInfo) -> String? {
        indexDirectory.map { $0 + "/" + OrgIndex.fileName(info.segment) }
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
