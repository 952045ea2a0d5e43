import Archive
import AuditBase
import ChainIndex
import Foundation
import LogProofs
import SegmentStore

/// A read replica's copy of a log, kept in step with the bucket the log replicates into
/// (format-spec.md §12.6): each round takes what is new, in order, and checks all of it.
///
/// The followed log's segment that holds the next entry is read from its bundle when the
/// bucket holds one (verified whole, as recovery does), else from its signed tail objects,
/// each continuing the one before it byte for byte. Every entry then enters the follower
/// ledger through the chain rule (`Ledger.appendVerbatim`), and every checkpoint the bucket
/// publishes must be the follower's own tree's (`Ledger.adopt`). Anything that does not verify
/// stops the round with an error that names the object; what was taken before it stays (it
/// verified), and nothing after it is taken.
public final class Follower: @unchecked Sendable {
    /// The follower ledger (`Ledger(following:verifier:)`).
    public let ledger: Ledger
    /// The bucket the followed log replicates into.
    public let bucket: S3Backend
    /// Called with each batch of entries once the ledger holds them (the replica derives its
    /// tokens from them).
    public var observe: (([StoredRecord]) throws -> Void)?

    private let cursorPath: String
    /// The followed log's segment that holds the next entry.
    private var segment: UInt64
    /// The bytes of `segment` read from its tail objects so far, and the entry the next tail
    /// object starts at (nil: none read yet, so the first one is at byte 0).
    private var offset: Int64 = 0
    private var tailEnd: UInt64?
    /// The newest checkpoint object adopted.
    private var adoptedName: String?

    /// Follows the log `ledger` follows, as it replicates into `bucket`, from where this
    /// replica stopped (its data directory remembers the segment).
    public init(ledger: Ledger, bucket: S3Backend) throws {
        guard ledger.isFollower else {
            throw AuditError(.invalidArgument, "a replica follows into a follower ledger, not a primary log")
        }
        self.ledger = ledger
        self.bucket = bucket
        cursorPath = DataDirectory(ledger.directory).following
        segment = 0
        if let bytes = try FileOps.readFile(cursorPath, limit: 4096) {
            guard let c = try? JSONDecoder().decode(Cursor.self, from: Data(bytes)), c.segment < UInt64.max else {
                throw AuditError(.corrupt, "\(cursorPath) is malformed; remove it and the replica reads the log again")
            }
            segment = c.segment
        }
    }

    struct Cursor: Codable { var segment: UInt64 }

    /// What one round took.
    public struct Round: Sendable, Equatable {
        /// Entries taken.
        public var entries: UInt64 = 0
        /// The newest checkpoint adopted in the round, if any.
        public var checkpoint: UInt64?
    }

    /// Takes everything new in the bucket, then the newest checkpoint it backs.
    @discardableResult
    public func round() throws -> Round {
        var r = Round()
        try followSuccessions()
        while true {
            if let n = try takeBundle() {
                r.entries += n
                continue
            }
            let n = try takeTails()
            r.entries += n
            if n > 0 { continue }
            if try segmentEnded() { continue }
            break
        }
        r.checkpoint = try adoptCheckpoint()
        return r
    }

    // MARK: Steps

    /// Follows the key successions the bucket holds beyond those followed (format-spec.md
    /// §8.8): each must be signed by the key in force and the new key, or the round fails.
    private func followSuccessions() throws {
        let have = ledger.verifier.successions.count
        // Every version listed, not the latest objects: a delete marker hides nothing here.
        let names = try bucket.firstVersions(under: BucketLayout.successionFolder).keys.sorted()
        guard names.count > have else { return }
        for name in names {
            guard let bytes = try bucket.firstVersionBytes(name) else { continue }
            let s: KeySuccession
            do { s = try KeySuccession(note: String(decoding: bytes, as: UTF8.self)) } catch {
                throw TailObjectError(object: bucket.objectKey(name), reason: "is not a key succession: \(error)")
            }
            guard BucketLayout.succession(handover: s.handover) == name else {
                throw TailObjectError(
                    object: bucket.objectKey(name), reason: "hands over at \(s.handover), its name says otherwise")
            }
            do { try ledger.follow(s) } catch {
                throw TailObjectError(object: bucket.objectKey(name), reason: "\(error)")
            }
        }
    }

    /// Takes the rest of `segment` from its bundle, if the bucket holds one; nil if not.
    private func takeBundle() throws -> UInt64? {
        let name = BundleFiles.name(segment)
        guard try bucket.contains(bundle: name) else { return nil }
        let dir = try bucket.path(of: name)
        defer { bucket.evictCache(bundle: name) }
        let m = try ArchiveBundle.verify(directory: dir, verifier: ledger.verifier)
        let next = ledger.size
        guard m.segment == segment, m.first_seq <= next, next <= m.end_seq else {
            throw BundleError(
                file: bucket.objectKey(name),
                reason:
                    "holds segment \(m.segment), entries \(m.first_seq)..<\(m.end_seq); the replica needs segment \(segment) from entry \(next)"
            )
        }
        let before = next
        if next < m.end_seq {
            // A sealed segment's blocks group entries by org: read whole, in sequence order.
            let records = try SealedSegment(path: dir + "/" + BundleFiles.segment).readAll()
            var at = records.firstIndex { $0.seq >= next } ?? records.count
            while at < records.count {
                let end = min(records.count, at + 4096)
                try take(Array(records[at..<end]))
                at = end
            }
        }
        guard ledger.size == m.end_seq else {
            throw BundleError(
                file: bucket.objectKey(name),
                reason: "its segment ends at entry \(ledger.size), its manifest at \(m.end_seq)")
        }
        // Its checkpoint is the log's at the seal: it must be this tree's.
        let (_, cp) = try ArchiveBundle.checkSigned(directory: dir, verifier: ledger.verifier)
        if cp.checkpoint.size <= ledger.size { try adopt(cp, object: bucket.objectKey(name)) }
        try moveTo(segment: segment + 1)
        return ledger.size - before
    }

    /// Takes the tail objects of `segment` that continue what was read; how many entries.
    private func takeTails() throws -> UInt64 {
        let versions = try bucket.firstVersions(under: BucketLayout.tailFolder(segment))
        // At each entry, the longest object that starts there (a retry may have put a shorter one).
        var starts: [UInt64: (name: String, end: UInt64)] = [:]
        for name in versions.keys {
            guard let t = BucketLayout.parseTail(name), t.segment == segment else { continue }
            if (starts[t.first]?.end ?? 0) < t.end { starts[t.first] = (name, t.end) }
        }
        guard var at = tailEnd ?? starts.keys.min() else { return 0 }
        let before = ledger.size
        while let link = starts[at], let version = versions[link.name] {
            let key = bucket.objectKey(link.name)
            let obj = try TailObject.decode(
                try bucket.bytes(link.name, version: version), name: key, verifier: ledger.verifier)
            guard obj.segment == segment, obj.first == at, obj.end == link.end, obj.offset == offset else {
                throw TailObjectError(
                    object: key,
                    reason:
                        "its note names segment \(obj.segment), entries \(obj.first)..<\(obj.end) at byte \(obj.offset); the replica reads segment \(segment) from entry \(at) at byte \(offset)"
                )
            }
            let records = try Self.records(of: obj, object: key)
            if let first = records.first, first.seq > ledger.size {
                throw TailObjectError(
                    object: key,
                    reason: "starts at entry \(first.seq); the replica holds \(ledger.size): entries are missing")
            }
            let fresh = records.filter { $0.seq >= ledger.size }
            if !fresh.isEmpty { try take(fresh) }
            offset = obj.endOffset
            tailEnd = obj.end
            at = obj.end
        }
        return ledger.size - before
    }

    /// Whether `segment` ended at the next entry: the next segment's first tail object starts
    /// there (its bundle may not be put yet). Then the replica reads on from that segment.
    private func segmentEnded() throws -> Bool {
        let next = ledger.size
        let names = try bucket.objects(under: BucketLayout.tailFolder(segment + 1))
        guard names.contains(where: { BucketLayout.parseTail($0)?.first == next }) else { return false }
        try moveTo(segment: segment + 1)
        return true
    }

    /// Adopts the newest checkpoint object the bucket holds that the replica's entries cover.
    private func adoptCheckpoint() throws -> UInt64? {
        let names = try bucket.names(under: BucketLayout.checkpointFolder, after: adoptedName)
        let held = ledger.size
        guard
            let best = names.compactMap({ n in BucketLayout.parseCheckpoint(n).map { (name: n, size: $0) } })
                .filter({ $0.size <= held }).max(by: { $0.size < $1.size })
        else { return nil }
        let key = bucket.objectKey(best.name)
        guard let bytes = try bucket.firstVersionBytes(best.name) else { return nil }
        let cp: SignedCheckpoint
        do { cp = try SignedCheckpoint(note: String(decoding: bytes, as: UTF8.self), verifier: ledger.verifier) } catch
        {
            throw TailObjectError(object: key, reason: "is not a checkpoint of this log: \(error)")
        }
        guard cp.checkpoint.size == best.size else {
            throw TailObjectError(object: key, reason: "signs size \(cp.checkpoint.size), its name says \(best.size)")
        }
        try adopt(cp, object: key)
        adoptedName = best.name
        return cp.checkpoint.size
    }

    // MARK: Pieces

    private func take(_ records: [StoredRecord]) throws {
        guard !records.isEmpty else { return }
        try ledger.appendVerbatim(records)
        try observe?(records)
    }

    private func adopt(_ cp: SignedCheckpoint, object: String) throws {
        do { try ledger.adopt(cp) } catch {
            throw TailObjectError(
                object: object,
                reason:
                    "signs size \(cp.checkpoint.size) with a root the replica's entries do not give (\((error as? AuditError)?.message ?? "\(error)")): the bucket's objects were altered or do not belong together"
            )
        }
    }

    private func moveTo(segment n: UInt64) throws {
        segment = n
        offset = 0
        tailEnd = nil
        try FileOps.replaceFile(cursorPath, contents: Array(try JSONEncoder().encode(Cursor(segment: n))))
    }

    /// The entries a tail object carries: its bytes are whole blocks of its segment (after the
    /// segment's header when it starts at byte 0), holding exactly entries `first..<end`.
    static func records(of obj: TailObject, object: String) throws -> [StoredRecord] {
        func bad(_ why: String) -> TailObjectError { TailObjectError(object: object, reason: why) }
        let b = obj.bytes
        var i = 0
        if obj.offset == 0 {
            guard b.count >= SegmentFormat.headerSize else { throw bad("is shorter than a segment header") }
            let h = try SegmentHeader.parse(Array(b[0..<SegmentFormat.headerSize]), path: object)
            guard h.segment == obj.segment, h.firstSeq == obj.first else {
                throw bad("its segment header names segment \(h.segment) from entry \(h.firstSeq)")
            }
            i = SegmentFormat.headerSize
        }
        var out: [StoredRecord] = []
        var expect = obj.first
        while i < b.count {
            let (h, records): (BlockHeader, [StoredRecord])
            do { (h, records) = try Block.decode(b[i...]) } catch {
                throw bad("its block at byte \(obj.offset + Int64(i)) does not decode: \(error.reason)")
            }
            for r in records {
                guard r.seq == expect else { throw bad("holds entry \(r.seq) where entry \(expect) belongs") }
                expect += 1
            }
            out += records
            i += h.totalLength
        }
        guard expect == obj.end else { throw bad("holds entries up to \(expect), its note says \(obj.end)") }
        return out
    }
}
