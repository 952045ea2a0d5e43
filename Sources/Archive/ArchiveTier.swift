import AuditBase
import AuditIndex
import SegmentStore

/// The archive as the ledger sees it (`RetiredTier`): its stubs say which segments left the
/// hot directory and what they held; its restore markers say which came back.
public struct ArchiveTier: RetiredTier {
    /// The archive tier.
    public init() {}

    /// The segments the stubs in `segments` retire (`ArchivedStub.retired(inSegments:readOnly:)`).
    public func retired(inSegments segments: String, readOnly: Bool) throws -> [RetiredSegment] {
        try ArchivedStub.retired(inSegments: segments, readOnly: readOnly)
    }

    /// The stub's summary of retired segment `info`.
    public func summary(of info: SegmentInfo) throws -> RetiredSummary {
        try ArchivedStub.load(info.path).summary
    }

    /// The segments with a `segments/N.restored` marker.
    public func restored(inSegments segments: String) throws -> [UInt64] {
        try FileOps.list(segments).compactMap { name -> UInt64? in
            guard let (n, suffix) = SegmentNames.parse(name), suffix == Archiver.restoredSuffix else { return nil }
            return n
        }
    }
}

extension ArchivedStub {
    /// What the index and the ledger are told of the segment.
    public var summary: RetiredSummary {
        RetiredSummary(
            segment: segment, firstSeq: first_seq, endSeq: end_seq, label: bundle, purged: purged_at != nil, orgs: orgs,
            manifest: manifest, manifestNote: manifest_note)
    }
}
