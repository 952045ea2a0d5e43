import Foundation
import SegmentStore

/// What stays in the hot tier when a sealed segment moves to the archive (format-spec.md §12.3):
/// `segments/N.archived`, a JSON object. The segment store reads `segment`, `first_seq`,
/// `end_seq` and `bundle`; the chain checker reads the per-org summary, which is also in the
/// bundle's signed manifest (`manifest_note` signs `manifest_sha256`), so it is checked, not trusted.
public struct ArchivedStub: Codable, Sendable, Equatable {
    /// One org's entries in the segment.
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
        public init(org: String, entries: UInt64, count_after: UInt64, last_seq: UInt64, min_time: Int64, max_time: Int64) {
            self.org = org; self.entries = entries; self.count_after = count_after; self.last_seq = last_seq
            self.min_time = min_time; self.max_time = max_time
        }
    }

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
    public init(segment: UInt64, first_seq: UInt64, end_seq: UInt64, bundle: String, manifest_sha256: String, manifest_note: String,
                orgs: [OrgSummary], purged_at: String?, tombstone: String?, manifest: String? = nil) {
        self.segment = segment; self.first_seq = first_seq; self.end_seq = end_seq; self.bundle = bundle
        self.manifest_sha256 = manifest_sha256; self.manifest_note = manifest_note; self.orgs = orgs
        self.purged_at = purged_at; self.tombstone = tombstone; self.manifest = manifest
    }

    /// Reads a stub.
    public static func load(_ path: String) throws -> ArchivedStub {
        guard let b = try FileOps.readFile(path, limit: 16 << 20) else { throw StoreError(.notFound, "no stub", path: path) }
        let d = Data(b)
        do { return try JSONDecoder().decode(ArchivedStub.self, from: d) } catch {
            throw StoreError(.corrupt, "archived-segment stub is malformed: \(error)", path: path, offset: 0)
        }
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
    public static func tombstoneText(origin: String, segment: UInt64, firstSeq: UInt64, endSeq: UInt64, sha256: String, purgedAt: String) -> String {
        "auditlog tombstone\n\(origin)\n\(segment)\n\(firstSeq)\n\(endSeq)\n\(sha256)\n\(purgedAt)\n"
    }

    /// What a stub repeats of its manifest.
    struct ManifestSummary: Decodable {
        var segment: UInt64, first_seq: UInt64, end_seq: UInt64, orgs: [OrgSummary]
    }

    /// Checks the stub's signed notes (manifest, and tombstone if purged) against `verifier`,
    /// and, when the stub keeps its manifest, that the manifest is the signed one and says
    /// what the stub says (segment, range, every org's summary).
    public func checkNote(verifier: NoteVerifier) throws {
        let text = try verifier.open(manifest_note)
        guard text == Self.manifestNoteText(origin: verifier.name, segment: segment, sha256: manifest_sha256) else {
            throw LedgerError("archived segment \(segment): the stub's signed manifest note does not name this segment and manifest")
        }
        if let manifest {
            guard SHA256.hash(Array(manifest.utf8)).hex == manifest_sha256 else {
                throw LedgerError("archived segment \(segment): the stub's copy of its manifest is not the signed one (edited)")
            }
            guard let m = try? JSONDecoder().decode(ManifestSummary.self, from: Data(manifest.utf8)) else {
                throw LedgerError("archived segment \(segment): the stub's manifest cannot be read")
            }
            guard m.segment == segment, m.first_seq == first_seq, m.end_seq == end_seq else {
                throw LedgerError("archived segment \(segment): the stub names segment \(segment) [\(first_seq), \(end_seq)) but its signed manifest names segment \(m.segment) [\(m.first_seq), \(m.end_seq))")
            }
            let signed = Dictionary(m.orgs.map { ($0.org, $0) }, uniquingKeysWith: { a, _ in a })
            for o in orgs where signed[o.org] != o {
                throw LedgerError("archived segment \(segment): the stub's summary of org \(o.org) (entries \(o.entries), count_after \(o.count_after), last_seq \(o.last_seq)) differs from its signed manifest's\(signed[o.org].map { " (entries \($0.entries), count_after \($0.count_after), last_seq \($0.last_seq))" } ?? " (which does not list it)")")
            }
            guard orgs.count == m.orgs.count else {
                throw LedgerError("archived segment \(segment): the stub lists \(orgs.count) orgs, its signed manifest \(m.orgs.count)")
            }
        }
        if let purged_at {
            guard let tombstone, try verifier.open(tombstone) == Self.tombstoneText(origin: verifier.name, segment: segment, firstSeq: first_seq, endSeq: end_seq, sha256: manifest_sha256, purgedAt: purged_at) else {
                throw LedgerError("purged segment \(segment): its tombstone is missing or does not match the stub")
            }
        }
    }
}

extension ChainChecker {
    /// Steps over an archived (or purged) segment without its entries: the leaf hashes come from
    /// the stored tree (so every checkpoint root is still recomputed over them) and the org chains
    /// continue from the stub's summary, whose signature is checked.
    public mutating func skipArchived(_ info: SegmentInfo, verifier: NoteVerifier) throws -> VerificationFailure? {
        guard info.firstSeq == position else {
            return VerificationFailure(seq: position, path: info.path, offset: nil, message: "archived segment starts at \(info.firstSeq), expected \(position)")
        }
        let stub: ArchivedStub
        do {
            stub = try ArchivedStub.load(info.path)
            try stub.checkNote(verifier: verifier)
        } catch {
            return VerificationFailure(seq: info.firstSeq, path: info.path, offset: 0, message: "\(error)")
        }
        var seq = info.firstSeq
        while seq < info.endSeq {
            let k = Int(min(UInt64(8192), info.endSeq - seq))
            let leaves = try tree.leaves(from: seq, count: k)
            for leaf in leaves {
                prev = leaf
                range.append(leaf)
                if let m = try tiles.append(leaf) { return VerificationFailure(seq: seq, path: info.path, offset: nil, message: m) }
                while nextCp < checkpoints.count && checkpoints[nextCp].size == seq + 1 {
                    if range.root() != checkpoints[nextCp].root {
                        return VerificationFailure(seq: seq, path: checkpointPath, offset: checkpoints[nextCp].offset,
                                                   message: "recomputed root at size \(seq + 1) (across archived segment \(info.segment)) does not match the signed checkpoint")
                    }
                    nextCp += 1
                }
                seq += 1
            }
        }
        for o in stub.orgs {
            guard o.last_seq >= info.firstSeq, o.last_seq < info.endSeq, o.entries > 0, o.entries <= info.endSeq - info.firstSeq else {
                return VerificationFailure(seq: info.firstSeq, path: info.path, offset: 0, message: "stub summary of org \(o.org) points outside the segment")
            }
            // The org chain continues through the segment: its count before plus its entries.
            if o.count_after != (orgs[o.org]?.count ?? 0) + o.entries {
                return VerificationFailure(seq: info.firstSeq, path: info.path, offset: 0,
                    message: "stub summary of org \(o.org): count_after \(o.count_after) is not its \(orgs[o.org]?.count ?? 0) entries before the segment plus the \(o.entries) in it")
            }
            orgs[o.org] = OrgState(count: o.count_after, lastSeq: o.last_seq, lastLeaf: try tree.leaf(o.last_seq))
        }
        position = info.endSeq
        if let t = stub.orgs.map(\.max_time).max() { archivedUntil = max(archivedUntil ?? t, t) }
        return nil
    }

    /// Checks segments from `position` up to (not including) `end`, hot or archived.
    public mutating func checkSegments(upTo end: UInt64, verifier: NoteVerifier, batchSize: Int = 8192,
                                       progress: ((UInt64) -> Void)? = nil) throws -> VerificationFailure? {
        for info in store.segments() where info.endSeq > position && info.firstSeq < end {
            if info.state == .archived {
                if let f = try skipArchived(info, verifier: verifier) { return f }
                progress?(position)
                continue
            }
            let before = self
            segmentHits.removeAll(keepingCapacity: true)
            var batch: [StoredRecord] = []
            var failure: VerificationFailure?
            do {
                try store.scan(from: max(position, info.firstSeq), to: min(end, info.endSeq)) { rec in
                    batch.append(rec)
                    if batch.count >= batchSize {
                        failure = try check(batch)
                        batch.removeAll(keepingCapacity: true)
                        progress?(position)
                    }
                    return failure == nil
                }
            } catch let e as StoreError {
                // The archiver may have moved the segment while it was being read: then it is
                // stepped over as archived, from where it started. Anything else is a failure.
                let stub = store.directory + "/" + SegmentNames.archived(info.segment)
                guard info.state == .sealed, info.firstSeq >= before.position, !FileOps.exists(info.path), FileOps.exists(stub) else { throw e }
                self = before
                let moved = SegmentInfo(segment: info.segment, state: .archived, path: stub, firstSeq: info.firstSeq, endSeq: info.endSeq)
                if let f = try skipArchived(moved, verifier: verifier) { return f }
                progress?(position)
                continue
            }
            if failure == nil, !batch.isEmpty { failure = try check(batch) }
            if let failure { return failure }
            if info.state == .sealed, before.position <= info.firstSeq, position == info.endSeq, let f = checkIndexFile(info) { return f }
            progress?(position)
        }
        return nil
    }
}
