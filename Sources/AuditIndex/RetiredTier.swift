import AuditBase
import SegmentStore

/// One org's entries in a segment: a bundle manifest's and an archived stub's `orgs`
/// (format-spec.md §12), and what the index and the ledger know of a retired segment.
public struct OrgSummary: Codable, Sendable, Equatable {
    /// The org.
    public var org: String
    /// Its entries in the segment.
    public var entries: UInt64
    /// Its entry count after the segment (its next `orgSeq`).
    public var count_after: UInt64
    /// Its last entry's sequence number in the segment.
    public var last_seq: UInt64
    /// Earliest `received_at` (ms) among them.
    public var min_time: Int64
    /// Latest `received_at` (ms) among them.
    public var max_time: Int64

    /// A summary.
    public init(
        org: String, entries: UInt64, count_after: UInt64, last_seq: UInt64, min_time: Int64, max_time: Int64
    ) {
        self.org = org
        self.entries = entries
        self.count_after = count_after
        self.last_seq = last_seq
        self.min_time = min_time
        self.max_time = max_time
    }

    /// `summary` with entry `seq` (at org position `orgSeq`, received at `time`) counted
    /// in its org's summary: how a bundle's manifest is made, and checked.
    public static func add(
        to summary: inout [String: OrgSummary], org: String, seq: UInt64, orgSeq: UInt64, time: Int64
    ) {
        var s =
            summary[org]
            ?? OrgSummary(org: org, entries: 0, count_after: 0, last_seq: seq, min_time: .max, max_time: .min)
        s.entries += 1
        s.count_after = orgSeq + 1
        s.last_seq = seq
        s.min_time = min(s.min_time, time)
        s.max_time = max(s.max_time, time)
        summary[org] = s
    }
}

/// What the index and the ledger know of a segment retired from the hot directory, as the
/// tier that retired it tells them: its range, where it went (for readers), whether its
/// entries were purged, and each org's summary. The tier signs what it says; the verifier,
/// which knows the tier, checks it.
public struct RetiredSummary: Sendable, Equatable {
    /// Segment number.
    public var segment: UInt64
    /// First sequence number.
    public var firstSeq: UInt64
    /// One past the last.
    public var endSeq: UInt64
    /// Where it went (the archive's bundle id), named to readers.
    public var label: String
    /// Whether its entries are gone for good (only the tier's signed record of them is left).
    public var purged: Bool
    /// Per-org summary.
    public var orgs: [OrgSummary]
    /// The tier's signed description of the segment, handed on in exports (format-spec.md
    /// §9.3 `archived_bundles`): the text and the signed note over its hash.
    public var manifest: String?
    /// The signed note over the manifest's hash.
    public var manifestNote: String

    /// A summary.
    public init(
        segment: UInt64, firstSeq: UInt64, endSeq: UInt64, label: String, purged: Bool, orgs: [OrgSummary],
        manifest: String?, manifestNote: String
    ) {
        self.segment = segment
        self.firstSeq = firstSeq
        self.endSeq = endSeq
        self.label = label
        self.purged = purged
        self.orgs = orgs
        self.manifest = manifest
        self.manifestNote = manifestNote
    }
}

/// The tier that takes sealed segments out of the hot directory (the archive), as the layers
/// below it see it: which segments it retired, what each held, and which it brought back.
/// The ledger is opened with it; without one, a directory whose segments left cannot open.
public protocol RetiredTier: Sendable {
    /// The segments retired from `segments` (a data directory's `segments/`), for the segment
    /// store to open with. May tidy markers a cut-short move left, unless `readOnly`.
    func retired(inSegments segments: String, readOnly: Bool) throws -> [RetiredSegment]
    /// What retired segment `info` held.
    func summary(of info: SegmentInfo) throws -> RetiredSummary
    /// Sealed segments in `segments` that the tier brought back, whose index sections the
    /// orgs' posting lists may lack.
    func restored(inSegments segments: String) throws -> [UInt64]
}
