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
    /// in sequence order), through `SealedIndexRows` (an archive bundle's copy of a segment's
    /// index file; a verification of the hot tier compares its entries as it checks them).
    public static func compare(
        _ path: String, segment: UInt64, firstSeq: UInt64, endSeq: UInt64, hits segmentHits: [String: [IndexHit]]
    ) -> VerificationFailure? {
        var rows = SealedIndexRows(loading: path, segment: segment, firstSeq: firstSeq, endSeq: endSeq)
        if let f = rows.failure { return f }
        compare: for (org, hits) in segmentHits.sorted(by: { $0.key < $1.key }) {
            for h in hits {
                guard rows.compare(org: org, seq: h.seq, orgSeq: h.orgSeq, fields: h.fields) else { break compare }
            }
        }
        return rows.finish()
    }

    static func describe(_ h: IndexHit) -> String {
        "seq \(h.seq), org_seq \(h.orgSeq), \(h.fields.category.rawValue)/\(h.fields.action), \(h.fields.outcome.rawValue), actor \(h.fields.actor), time \(h.fields.time)"
    }
}
