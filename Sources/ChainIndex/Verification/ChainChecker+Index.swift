import AuditBase
import Foundation
import SegmentStore

/// Index files are derived data, and checked as such (format-spec.md §10): every row of a
/// sealed segment's index file must say exactly what the entry it points to says, and every
/// entry of the segment must have its row. A row edited to hide an entry from a filtered
/// query (denied → success, say) is found even with its checksums recomputed.
extension ChainChecker {
    /// Compares sealed segment `info`'s index file with the rows its entries (just checked)
    /// call for. A missing index file is not a failure: it is rebuilt at the next start. Nor is
    /// one the archiver removed while it was being read (the segment's stub exists by then,
    /// and the bundle carries its own copy, checked when the bundle is).
    func checkIndexFile(_ info: SegmentInfo) -> VerificationFailure? {
        guard let dir = indexDirectory else { return nil }
        let path = dir + "/" + OrgIndex.fileName(info.segment)
        guard FileOps.exists(path) else { return nil }
        let failure = Self.compareIndexFile(
            path, segment: info.segment, firstSeq: info.firstSeq, endSeq: info.endSeq, hits: segmentHits)
        if failure != nil, !FileOps.exists(path),
            FileOps.exists(store.directory + "/" + ArchivedStub.fileName(info.segment))
        {
            return nil
        }
        return failure
    }

    /// Compares index file `path` with the rows a segment's entries call for (`hits`, per org
    /// in sequence order): the one check for the hot tier's index files and for bundles' copies.
    public static func compareIndexFile(
        _ path: String, segment: UInt64, firstSeq: UInt64, endSeq: UInt64, hits segmentHits: [String: [IndexHit]]
    ) -> VerificationFailure? {
        func fail(_ seq: UInt64?, _ offset: Int64?, _ m: String) -> VerificationFailure {
            VerificationFailure(seq: seq, path: path, offset: offset, message: m)
        }
        let idx: SealedIndex
        do { idx = try SealedIndex(path: path) } catch {
            let e = error as? StoreError
            return fail(nil, e?.offset ?? 0, e?.message ?? "\(error)")
        }
        guard idx.segment == segment, idx.firstSeq == firstSeq, idx.endSeq == endSeq else {
            return fail(
                nil, 8,
                "index file describes segment \(idx.segment) (\(idx.firstSeq)..<\(idx.endSeq)), not segment \(segment) (\(firstSeq)..<\(endSeq))"
            )
        }
        for org in segmentHits.keys where idx.dir[org] == nil {
            return fail(
                segmentHits[org]?.first?.seq, Int64(SealedIndex.headerSize),
                "index file lists no entries of org \(org), which has \(segmentHits[org]?.count ?? 0) in the segment")
        }
        for (org, entry) in idx.dir {
            guard let want = segmentHits[org] else {
                return fail(
                    entry.firstSeq, Int64(SealedIndex.headerSize),
                    "index file lists org \(org), which has no entry in the segment")
            }
            let got: [IndexHit]
            do { got = try idx.hits(org: org) } catch {
                let e = error as? StoreError
                return fail(entry.firstSeq, e?.offset ?? Int64(entry.offset), e?.message ?? "\(error)")
            }
            guard got.count == want.count else {
                return fail(
                    entry.firstSeq, Int64(entry.offset),
                    "index file has \(got.count) rows for org \(org), the segment \(want.count) entries")
            }
            for (g, w) in zip(got, want) where g != w {
                return fail(
                    w.seq, Int64(entry.offset),
                    "index row of entry \(w.seq) (org \(org)) says \(describe(g)) but the entry says \(describe(w))")
            }
        }
        return nil
    }

    static func describe(_ h: IndexHit) -> String {
        "seq \(h.seq), org_seq \(h.orgSeq), \(h.fields.category.rawValue)/\(h.fields.action), \(h.fields.outcome.rawValue), actor \(h.fields.actor), time \(h.fields.time)"
    }

    /// Compares the org-state snapshot with the orgs' state after the entries checked so far
    /// (the checker must stand at the snapshot's `end`).
    public func checkOrgState(_ path: String, orgs snapshot: [String: (UInt64, UInt64)]) -> VerificationFailure? {
        for (org, st) in orgs {
            guard let (count, last) = snapshot[org], count == st.count, last == st.lastSeq else {
                return VerificationFailure(
                    seq: st.lastSeq, path: path, offset: nil,
                    message:
                        "org-state snapshot says org \(org) has \(snapshot[org].map { "\($0.0) entries, the last at \($0.1)" } ?? "nothing"), the entries say \(st.count), the last at \(st.lastSeq.map(String.init) ?? "none")"
                )
            }
        }
        for org in snapshot.keys where orgs[org] == nil {
            return VerificationFailure(
                seq: nil, path: path, offset: nil,
                message: "org-state snapshot lists org \(org), which has no entry before its end")
        }
        return nil
    }
}
