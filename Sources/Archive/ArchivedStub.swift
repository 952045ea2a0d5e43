import AuditBase
import AuditEntries
import AuditIndex
import Foundation
import LogProofs
import SegmentStore

/// What stays in the hot tier when a sealed segment moves to the archive (format-spec.md §12.3):
/// `segments/N.archived`, a JSON object, and the only reader of it. The segment store knows
/// nothing of it: `retired(inSegments:readOnly:)` tells it which segments left (`segment`,
/// `first_seq`, `end_seq`, `bundle`), and the ledger and index learn the rest through
/// `ArchiveTier` (a `RetiredTier`); the chain checker reads the per-org summary, which is also
/// in the bundle's signed manifest (`manifest_note` signs `manifest_sha256`), so it is checked,
/// not trusted.
public struct ArchivedStub: Codable, Sendable, Equatable {
    /// One org's entries in the segment.
    public typealias OrgSummary = AuditIndex.OrgSummary

    /// Segment number.
    public var segment: UInt64
    /// First sequence number.
    public var first_seq: UInt64
    /// One past the last.
    public var end_seq: UInt64
    /// Bundle id.
    public var bundle: String
    /// Hex SHA-256 of the bundle's manifest.json.
    public var manifest_sha256: String
    /// The signed note over the manifest hash (format-spec.md §12.2).
    public var manifest_note: String
    /// Per-org summary (as in the manifest).
    public var orgs: [OrgSummary]
    /// When the bundle was purged (RFC 3339), if it was.
    public var purged_at: String?
    /// The signed tombstone left by the purge.
    public var tombstone: String?
    /// The bundle's `manifest.json`, byte for byte (as text): hashing it gives
    /// `manifest_sha256`, which `manifest_note` signs, so the summary above is checked against
    /// signed data without the archive. Absent in stubs written before it was kept.
    public var manifest: String?

    /// A stub.
    public init(
        segment: UInt64, first_seq: UInt64, end_seq: UInt64, bundle: String, manifest_sha256: String,
        manifest_note: String,
        orgs: [OrgSummary], purged_at: String?, tombstone: String?, manifest: String? = nil
    ) {
        self.segment = segment
        self.first_seq = first_seq
        self.end_seq = end_seq
        self.bundle = bundle
        self.manifest_sha256 = manifest_sha256
        self.manifest_note = manifest_note
        self.orgs = orgs
        self.purged_at = purged_at
        self.tombstone = tombstone
        self.manifest = manifest
    }

    /// Reads a stub.
    public static func load(_ path: String) throws -> ArchivedStub {
        guard let b = try FileOps.readFile(path, limit: 16 << 20) else {
            throw AuditError(.notFound, "no stub", path: path)
        }
        let d = Data(b)
        do { return try JSONDecoder().decode(ArchivedStub.self, from: d) } catch {
            throw AuditError(.corrupt, "archived-segment stub is malformed: \(error)", path: path, offset: 0)
        }
    }

    /// `00000000000000000007.archived`: the stub's name in the segments directory.
    public static func fileName(_ segment: UInt64) -> String { SegmentNames.digits(segment) + ".archived" }

    /// What a reader of an entry archived in `bundle` is told.
    public static func hint(bundle: String) -> String {
        "it is archived in bundle \(bundle); bring it back with `auditctl archive restore`"
    }

    /// The segments the stubs in `segments` (a data directory's `segments/`) retire, for the
    /// segment store to open with. A stub beside its segment's sealed file means a move or a
    /// restore did not finish: the hot copy wins, and the stub is removed unless `readOnly`.
    public static func retired(inSegments segments: String, readOnly: Bool) throws -> [RetiredSegment] {
        var out: [RetiredSegment] = []
        var removed = false
        for name in try FileOps.list(segments).sorted() {
            guard let (n, suffix) = SegmentNames.parse(name), suffix == "archived" else { continue }
            let path = segments + "/" + name
            if FileOps.exists(segments + "/" + SegmentNames.sealed(n)) {
                if !readOnly {
                    try FileOps.unlink(path)
                    removed = true
                }
                continue
            }
            let stub = try load(path)
            guard stub.segment == n, stub.end_seq > stub.first_seq else {
                throw AuditError(
                    .corrupt,
                    "archived-segment stub names segment \(stub.segment) [\(stub.first_seq), \(stub.end_seq))",
                    path: path, offset: 0)
            }
            out.append(
                RetiredSegment(
                    segment: n, firstSeq: stub.first_seq, endSeq: stub.end_seq, path: path,
                    label: stub.bundle, hint: hint(bundle: stub.bundle)))
        }
        if removed { try FileOps.fsyncDirectory(segments) }
        return out
    }

    /// Writes a stub durably (temp file, fsync, rename, directory fsync).
    public func save(_ path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileOps.replaceFile(path, contents: Array(try enc.encode(self)) + [0x0A])
    }

    /// The text of the manifest note: `auditlog bundle\n<origin>\n<segment>\n<sha256>\n`.
    public static func manifestNoteText(origin: String, segment: UInt64, sha256: String) -> String {
        "auditlog bundle\n\(origin)\n\(segment)\n\(sha256)\n"
    }

    /// The text of a purge tombstone (format-spec.md §12.4).
    public static func tombstoneText(
        origin: String, segment: UInt64, firstSeq: UInt64, endSeq: UInt64, sha256: String, purgedAt: String
    ) -> String {
        "auditlog tombstone\n\(origin)\n\(segment)\n\(firstSeq)\n\(endSeq)\n\(sha256)\n\(purgedAt)\n"
    }

    /// What a stub repeats of its manifest.
    package struct ManifestSummary: Decodable {
        package var segment: UInt64, first_seq: UInt64, end_seq: UInt64, orgs: [OrgSummary]
    }

    /// Checks the stub's signed notes (manifest, and tombstone if purged) against `verifier`,
    /// and, when the stub keeps its manifest, that the manifest is the signed one and says
    /// what the stub says (segment, range, every org's summary).
    public func checkNote(verifier: LogKeys) throws {
        let text = try verifier.open(manifest_note)
        guard text == Self.manifestNoteText(origin: verifier.name, segment: segment, sha256: manifest_sha256) else {
            throw AuditError(
                "archived segment \(segment): the stub's signed manifest note does not name this segment and manifest")
        }
        if let manifest {
            guard SHA256.hash(Array(manifest.utf8)).hex == manifest_sha256 else {
                throw AuditError(
                    "archived segment \(segment): the stub's copy of its manifest is not the signed one (edited)")
            }
            guard let m = try? JSONDecoder().decode(ManifestSummary.self, from: Data(manifest.utf8)) else {
                throw AuditError("archived segment \(segment): the stub's manifest cannot be read")
            }
            guard m.segment == segment, m.first_seq == first_seq, m.end_seq == end_seq else {
                throw AuditError(
                    "archived segment \(segment): the stub names segment \(segment) [\(first_seq), \(end_seq)) but its signed manifest names segment \(m.segment) [\(m.first_seq), \(m.end_seq))"
                )
            }
            let signed = Dictionary(m.orgs.map { ($0.org, $0) }, uniquingKeysWith: { a, _ in a })
            for o in orgs where signed[o.org] != o {
                throw AuditError(
                    "archived segment \(segment): the stub's summary of org \(o.org) (entries \(o.entries), count_after \(o.count_after), last_seq \(o.last_seq)) differs from its signed manifest's\(signed[o.org].map { " (entries \($0.entries), count_after \($0.count_after), last_seq \($0.last_seq))" } ?? " (which does not list it)")"
                )
            }
            guard orgs.count == m.orgs.count else {
                throw AuditError(
                    "archived segment \(segment): the stub lists \(orgs.count) orgs, its signed manifest \(m.orgs.count)"
                )
            }
        }
        if let purged_at {
            guard let tombstone,
                try verifier.open(tombstone)
                    == Self.tombstoneText(
                        origin: verifier.name, segment: segment, firstSeq: first_seq, endSeq: end_seq,
                        sha256: manifest_sha256, purgedAt: purged_at)
            else {
                throw AuditError("purged segment \(segment): its tombstone is missing or does not match the stub")
            }
        }
    }
}
