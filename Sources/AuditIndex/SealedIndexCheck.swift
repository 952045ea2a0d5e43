import AuditBase
import AuditEntries
import SegmentStore

/// Checks an index file on its own (for archive bundles).
public enum SealedIndexCheck {
    /// Opens the index file at `path`, checks its directory checksum and every org section's
    /// checksum, and that it belongs to `segment`. Returns the orgs it lists.
    public static func check(path: String, segment: UInt64) throws -> [String] {
        let idx = try SealedIndex(path: path)
        guard idx.segment == segment else {
            throw AuditError(.corrupt, "index of segment \(idx.segment), expected \(segment)", path: path)
        }
        for org in idx.dir.keys { _ = try idx.hits(org: org) }
        return idx.dir.keys.sorted()
    }

    /// Compares index file `path` with the rows a segment's entries call for (`hits`, per org
    /// in sequence order): the one check for the hot tier's index files and for bundles' copies.
    public static func compare(
        _ path: String, segment: UInt64, firstSeq: UInt64, endSeq: UInt64, hits segmentHits: [String: [IndexHit]]
    ) -> VerificationFailure? {
        func fail(_ seq: UInt64?, _ offset: Int64?, _ m: String) -> VerificationFailure {
            VerificationFailure(seq: seq, path: path, offset: offset, message: m)
        }
        let idx: SealedIndex
        do { idx = try SealedIndex(path: path) } catch {
            let e = error as? AuditError
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
            // Each row is compared as it is decoded: collecting them first copied every row
            // (its strings retained and released), a tenth of a verification's reference counting.
            // Nor is an entry's row copied out of `want`, nor a string out of the dictionaries,
            // to compare them (5 % of a verification).
            var rows = 0
            var first: (row: IndexHit, at: Int)?
            do {
                try want.withUnsafeBufferPointer { w in
                    try idx.visitRows(org: org) { g, actions, actors in
                        if first == nil, rows < w.count, let base = w.baseAddress,
                            !g.matches(base + rows, actions: actions, actors: actors)
                        {
                            first = (g.hit(actions: actions, actors: actors), rows)
                        }
                        rows += 1
                        return true
                    }
                }
            } catch {
                let e = error as? AuditError
                return fail(entry.firstSeq, e?.offset ?? Int64(entry.offset), e?.message ?? "\(error)")
            }
            guard rows == want.count else {
                return fail(
                    entry.firstSeq, Int64(entry.offset),
                    "index file has \(rows) rows for org \(org), the segment \(want.count) entries")
            }
            if let (g, i) = first {
                let w = want[i]
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
}
