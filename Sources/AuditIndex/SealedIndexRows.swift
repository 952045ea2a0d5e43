import AuditBase
import AuditEntries

#if canImport(Glibc)
import Glibc
#endif

/// A sealed segment's index file read whole, compared with the segment's entries one at a time
/// as they are checked (format-spec.md §10): every row says exactly what its entry says, and
/// every entry has its row. The one home of that rule, for the hot tier's index files and for
/// bundles' copies (`SealedIndexCheck.compare`). Nothing is kept per entry: each org's next
/// row is compared and passed (collecting every entry's row and comparing them all at the
/// segment's end was a sixth of a verification's time).
public struct SealedIndexRows {
    struct Org {
        let entry: IndexDirEntry
        let rows: [IndexRow]
        let actions: [String]
        let actors: [String]
        var next = 0
    }

    /// The most bytes one row and the strings it brings can take in a section (its varints,
    /// an action of 128 characters and an actor of 16 and 128, four bytes each at most).
    static let maxRowBytes: UInt64 = 1_200

    /// The index file.
    public let path: String
    private var orgs: [Org]
    private var positions: [String: Int]
    /// The first difference found; later ones are not looked for.
    public private(set) var failure: VerificationFailure?

    /// Reads index file `path`, which must describe `segment` (`firstSeq..<endSeq`): its header,
    /// its directory and every org's section, each checked against its checksum and decoded.
    /// What stops that is the `failure` (`finish` returns it).
    public init(loading path: String, segment: UInt64, firstSeq: UInt64, endSeq: UInt64) {
        self.path = path
        orgs = []
        positions = [:]
        let idx: SealedIndex
        do { idx = try SealedIndex(path: path) } catch {
            let e = error as? AuditError
            failure = VerificationFailure(
                seq: nil, path: path, offset: e?.offset ?? 0, message: e?.message ?? "\(error)")
            return
        }
        guard idx.segment == segment, idx.firstSeq == firstSeq, idx.endSeq == endSeq else {
            failure = VerificationFailure(
                seq: nil, path: path, offset: 8,
                message:
                    "index file describes segment \(idx.segment) (\(idx.firstSeq)..<\(idx.endSeq)), not segment \(segment) (\(firstSeq)..<\(endSeq))"
            )
            return
        }
        // Bounds before anything is decoded, so that a forged file costs no more memory than
        // the segment's own rows can: no more rows than the segment has entries, and no section
        // larger than its rows with their strings can be (a row with a new action and a new
        // actor at the schema's longest is under `maxRowBytes`).
        let sections = idx.dir.values.sorted(by: { $0.offset < $1.offset })
        var total: UInt64 = 0
        for e in sections {
            total += UInt64(e.count)
            guard total <= endSeq - firstSeq else {
                failure = VerificationFailure(
                    seq: e.firstSeq, path: path, offset: Int64(SealedIndex.headerSize),
                    message: "index file lists more rows than its segment has entries (\(endSeq - firstSeq))")
                return
            }
            guard UInt64(e.rawLength) <= UInt64(e.count) * Self.maxRowBytes + 64 else {
                failure = VerificationFailure(
                    seq: e.firstSeq, path: path, offset: Int64(e.offset),
                    message:
                        "index section of org \(e.org.prefix(64)) is \(e.rawLength) bytes, more than its \(e.count) rows can take"
                )
                return
            }
        }
        var orgs: [Org] = []
        orgs.reserveCapacity(sections.count)
        var current: IndexDirEntry?
        do {
            let fd = try FileOps.open(path, O_RDONLY)
            defer { close(fd) }
            // In file order: one read after another.
            for e in sections {
                current = e
                let z = try FileOps.preadExact(fd, count: Int(e.length), at: Int64(e.offset), path: path)
                let (rows, actions, actors) = try IndexSection.rows(z, e, path: path)
                orgs.append(Org(entry: e, rows: rows, actions: actions, actors: actors))
            }
        } catch {
            let e = error as? AuditError
            failure = VerificationFailure(
                seq: current?.firstSeq, path: path, offset: e?.offset ?? current.map { Int64($0.offset) },
                message: e?.message ?? "\(error)")
            return
        }
        self.orgs = orgs
        positions = Dictionary(uniqueKeysWithValues: orgs.indices.map { (orgs[$0].entry.org, $0) })
    }

    /// The file's place for `org`'s rows (nil: it lists none). Look it up once an org, not once
    /// an entry.
    public func place(of org: String) -> Int? { positions[org] }

    /// Compares the entry at `seq` (org `org`, whose rows are at `place`) with the next of
    /// that org's rows; false once a difference is found (`failure` says which). Entries come
    /// in sequence order.
    @discardableResult
    public mutating func compare(
        place k: Int, org: String, seq: UInt64, orgSeq: UInt64, fields: IndexFields
    ) -> Bool {
        guard failure == nil else { return false }
        // In place: a copy of the org's state would retain and release its arrays each entry.
        let found: String? = orgs.withUnsafeMutableBufferPointer { p in
            guard p[k].next < p[k].rows.count else {
                return
                    "index file has \(p[k].rows.count) rows for org \(org), the segment more entries (entry \(seq) has no row)"
            }
            let row = p[k].rows[p[k].next]
            p[k].next += 1
            guard
                row.seq == seq && row.orgSeq == orgSeq && row.time == fields.time && row.category == fields.category
                    && row.outcome == fields.outcome && p[k].actions[row.action] == fields.action
                    && p[k].actors[row.actor] == fields.actor
            else {
                let said = SealedIndexCheck.describe(row.hit(actions: p[k].actions, actors: p[k].actors))
                let is_ = SealedIndexCheck.describe(IndexHit(seq: seq, orgSeq: orgSeq, fields: fields))
                return "index row of entry \(seq) (org \(org)) says \(said) but the entry says \(is_)"
            }
            return nil
        }
        guard let found else { return true }
        failure = VerificationFailure(seq: seq, path: path, offset: Int64(orgs[k].entry.offset), message: found)
        return false
    }

    /// Records an entry of `org`, at `seq`, whose org the file lists no rows for.
    public mutating func unlisted(org: String, seq: UInt64) {
        guard failure == nil else { return }
        failure = VerificationFailure(
            seq: seq, path: path, offset: Int64(SealedIndex.headerSize),
            message: "index file lists no entries of org \(org), which has entries in the segment (entry \(seq))")
    }

    /// After the segment's last entry: the first failure, or one for a row no entry called for.
    public mutating func finish() -> VerificationFailure? {
        if let failure { return failure }
        for o in orgs where o.next < o.rows.count {
            let m =
                o.next == 0
                ? "index file lists org \(o.entry.org), which has no entry in the segment"
                : "index file has \(o.rows.count) rows for org \(o.entry.org), the segment \(o.next) entries"
            failure = VerificationFailure(
                seq: o.entry.firstSeq, path: path,
                offset: Int64(o.next == 0 ? SealedIndex.headerSize : Int(o.entry.offset)), message: m)
            return failure
        }
        return nil
    }
}
