import AuditBase
import AuditEntries

#if canImport(Glibc)
import Glibc
#endif

/// A sealed segment's index file read whole, compared with the segment's entries as they are
/// checked (format-spec.md §10): every row says exactly what its entry says, and every entry
/// has its row. The one home of that rule, for the hot tier's index files and for bundles'
/// copies (`SealedIndexCheck.compare`).
///
/// The rows are laid out by sequence number when the file is read (each must lie in the
/// segment, name an entry no other row names, and follow its section's previous row), so an
/// entry's row is found by its number alone: the comparison needs no state and runs on every
/// core beside the rest of an entry's preparation (`Lookup.check`), on the entry's bytes in
/// place; the serial pass only records each result (`record`). Each row an entry matched is
/// counted against its org's section, so a row no entry called for is found at the end.
public struct SealedIndexRows {
    struct Org {
        let entry: IndexDirEntry
        let rows: Int
        /// Rows an entry matched so far.
        var matched = 0
    }

    /// Bytes in `arena`.
    struct Span {
        var offset: Int
        var count: Int
    }

    /// A row, at its entry's place in `bySeq`.
    struct Row {
        /// Its section (nil: no row names this entry).
        var org: Int32 = -1
        var action: Int32 = 0
        var actor: Int32 = 0
        var category: Category = .authentication
        var outcome: Outcome = .success
        var orgSeq: UInt64 = 0
        var time: Int64 = 0
    }

    /// What comparing an entry with its row found (`Lookup.check`), recorded in entry order by
    /// `record`.
    public struct RowCheck: Sendable {
        enum Kind: UInt8 {
            case unchecked, same, differs, none, otherOrg
        }
        var kind: Kind
        /// The row's section, when there is a row.
        var org: Int32

        /// Not compared (yet): recorded, a failure.
        public static let unchecked = RowCheck(kind: .unchecked, org: -1)
    }

    /// The most bytes one row and the strings it brings can take in a section (its varints,
    /// an action of 128 characters and an actor of 16 and 128, four bytes each at most).
    static let maxRowBytes: UInt64 = 1_200

    /// The index file.
    public let path: String
    private let firstSeq: UInt64
    private var orgs: [Org]
    private var positions: [String: Int]
    /// Every string of the file (orgs' names, then each section's actions and actors), as
    /// spans of `arena`.
    private var arena: [UInt8] = []
    private var strings: [Span] = []
    /// Per section, its org's name in `strings`.
    private var orgNames: [Int32] = []
    /// Per entry of the segment, its row.
    private var bySeq: [Row] = []
    /// The first difference found; later ones are not looked for.
    public private(set) var failure: VerificationFailure?

    /// Reads index file `path`, which must describe `segment` (`firstSeq..<endSeq`): its header,
    /// its directory and every org's section, each checked against its checksum and decoded.
    /// What stops that is the `failure` (`finish` returns it).
    public init(loading path: String, segment: UInt64, firstSeq: UInt64, endSeq: UInt64) {
        self.path = path
        self.firstSeq = firstSeq
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
        bySeq = [Row](repeating: Row(), count: Int(endSeq - firstSeq))
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
                // Places are 32-bit: a file past them (no segment's is) is refused, not trapped on.
                guard let k = Int32(exactly: orgs.count), let name = add(e.org), let actionBase = add(actions),
                    let actorBase = add(actors)
                else {
                    failure = VerificationFailure(
                        seq: e.firstSeq, path: path, offset: Int64(e.offset),
                        message: "index file holds more sections or strings than a segment's can")
                    return
                }
                orgNames.append(name)
                var last: UInt64?
                for row in rows {
                    if let m = place(row, section: k, org: e.org, after: last, actionBase, actorBase) {
                        failure = VerificationFailure(seq: row.seq, path: path, offset: Int64(e.offset), message: m)
                        return
                    }
                    last = row.seq
                }
                orgs.append(Org(entry: e, rows: rows.count))
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

    /// Adds `s` to the strings, returning its place (nil past 32 bits).
    private mutating func add(_ s: String) -> Int32? {
        guard let i = Int32(exactly: strings.count) else { return nil }
        strings.append(Span(offset: arena.count, count: s.utf8.count))
        arena.append(contentsOf: s.utf8)
        return i
    }

    /// Adds a section's dictionary, returning the place of its first string (nil past 32 bits).
    private mutating func add(_ list: [String]) -> Int32? {
        guard let first = Int32(exactly: strings.count), Int32(exactly: strings.count + list.count) != nil else {
            return nil
        }
        for s in list { _ = add(s) }
        return first
    }

    /// Puts section `k`'s row at its entry's place: nil, or what is wrong with it.
    private mutating func place(
        _ row: IndexRow, section k: Int32, org: String, after last: UInt64?, _ actionBase: Int32, _ actorBase: Int32
    ) -> String? {
        guard row.seq >= firstSeq, row.seq - firstSeq < UInt64(bySeq.count) else {
            return "index file lists entry \(row.seq) under org \(org), outside its segment"
        }
        if let last, row.seq <= last {
            return "index section of org \(org) lists entry \(row.seq) after entry \(last): its rows are out of order"
        }
        let i = Int(row.seq - firstSeq)
        guard bySeq[i].org < 0 else {
            return "index file lists entry \(row.seq) twice (under org \(name(bySeq[i].org)) and org \(org))"
        }
        bySeq[i] = Row(
            org: k, action: actionBase + Int32(row.action), actor: actorBase + Int32(row.actor),
            category: row.category, outcome: row.outcome, orgSeq: row.orgSeq, time: row.time)
        return nil
    }

    /// String `i` of the file.
    private func string(_ i: Int32) -> String {
        let sp = strings[Int(i)]
        return String(decoding: arena[sp.offset..<(sp.offset + sp.count)], as: UTF8.self)
    }

    /// The name of section `k`'s org.
    private func name(_ k: Int32) -> String { string(orgNames[Int(k)]) }

    /// The rows as bytes in place, for comparing entries on any thread: valid inside
    /// `withLookup` only, read-only.
    public struct Lookup: @unchecked Sendable {
        let rows: UnsafeBufferPointer<Row>
        let strings: UnsafeBufferPointer<Span>
        let arena: UnsafeBufferPointer<UInt8>
        let orgNames: UnsafeBufferPointer<Int32>
        let firstSeq: UInt64

        /// Compares entry `seq` (of the org whose name is `org`, at `orgSeq` in its chain) with
        /// its row: the bytes of its action, and of its actor as `type`, `separator`, `id`.
        public func check(
            seq: UInt64, org: UnsafeBufferPointer<UInt8>, orgSeq: UInt64, time: Int64, category: Category,
            outcome: Outcome, action: UnsafeBufferPointer<UInt8>, actor type: UnsafeBufferPointer<UInt8>,
            _ separator: UnsafeBufferPointer<UInt8>, _ id: UnsafeBufferPointer<UInt8>
        ) -> RowCheck {
            guard seq >= firstSeq, seq - firstSeq < UInt64(rows.count) else { return RowCheck(kind: .none, org: -1) }
            let row = rows[Int(seq - firstSeq)]
            guard row.org >= 0 else { return RowCheck(kind: .none, org: -1) }
            guard equal(orgNames[Int(row.org)], org) else { return RowCheck(kind: .otherOrg, org: row.org) }
            let actor = strings[Int(row.actor)]
            let same =
                row.orgSeq == orgSeq && row.time == time && row.category == category && row.outcome == outcome
                && equal(row.action, action) && actor.count == type.count + separator.count + id.count
                && equal(actor, 0, type) && equal(actor, type.count, separator)
                && equal(actor, type.count + separator.count, id)
            return RowCheck(kind: same ? .same : .differs, org: row.org)
        }

        /// `check` of fields as Strings (an entry the scanner left to the parser).
        public func check(seq: UInt64, org: String, orgSeq: UInt64, fields: IndexFields) -> RowCheck {
            var (o, a, p) = (org, fields.action, fields.actor)
            return o.withUTF8 { o in
                a.withUTF8 { a in
                    p.withUTF8 { p in
                        check(
                            seq: seq, org: o, orgSeq: orgSeq, time: fields.time, category: fields.category,
                            outcome: fields.outcome, action: a, actor: p, .init(start: nil, count: 0),
                            .init(start: nil, count: 0))
                    }
                }
            }
        }

        private func equal(_ i: Int32, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
            let sp = strings[Int(i)]
            return sp.count == b.count && equal(sp, 0, b)
        }

        private func equal(_ sp: Span, _ at: Int, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
            guard !b.isEmpty else { return true }
            guard let a = arena.baseAddress, let bb = b.baseAddress else { return false }
            return memcmp(a + sp.offset + at, bb, b.count) == 0
        }
    }

    /// Calls `body` with the rows as a `Lookup`.
    public func withLookup<R>(_ body: (Lookup) throws -> R) rethrows -> R {
        try bySeq.withUnsafeBufferPointer { r in
            try strings.withUnsafeBufferPointer { s in
                try arena.withUnsafeBufferPointer { a in
                    try orgNames.withUnsafeBufferPointer { o in
                        try body(Lookup(rows: r, strings: s, arena: a, orgNames: o, firstSeq: firstSeq))
                    }
                }
            }
        }
    }

    /// Records what comparing entry `seq` of `org` with its row found (`Lookup.check`), in
    /// entry order; `fields` gives the entry's fields for a message when it differs. False
    /// once a difference is found (`failure` says which).
    @discardableResult
    public mutating func record(_ r: RowCheck, seq: UInt64, org: String, fields: () -> IndexHit?) -> Bool {
        guard failure == nil else { return false }
        let m: String
        switch r.kind {
        case .same:
            orgs[Int(r.org)].matched += 1
            return true
        case .differs:
            let row = bySeq[Int(seq - firstSeq)]
            let said = SealedIndexCheck.describe(
                IndexHit(
                    seq: seq, orgSeq: row.orgSeq,
                    fields: IndexFields(
                        time: row.time, category: row.category, outcome: row.outcome, action: string(row.action),
                        actor: string(row.actor))))
            let is_ = fields().map(SealedIndexCheck.describe) ?? "something else"
            m = "index row of entry \(seq) (org \(org)) says \(said) but the entry says \(is_)"
        case .unchecked:
            m = "entry \(seq) (org \(org)) was not compared with its index row"
        case .otherOrg:
            m = "index file lists entry \(seq) under org \(name(r.org)), but it is an entry of org \(org)"
        case .none:
            if let k = positions[org] {
                m =
                    "index file has \(orgs[k].rows) rows for org \(org), the segment more entries (entry \(seq) has no row)"
            } else {
                m = "index file lists no entries of org \(org), which has entries in the segment (entry \(seq))"
            }
        }
        let offset =
            r.org >= 0 ? Int64(orgs[Int(r.org)].entry.offset) : positions[org].map { Int64(orgs[$0].entry.offset) }
        failure = VerificationFailure(seq: seq, path: path, offset: offset ?? Int64(SealedIndex.headerSize), message: m)
        return false
    }

    /// Compares the entry at `seq` (org `org`) with its row and records the result (`check`,
    /// then `record`): for a caller with the entry's fields as Strings.
    @discardableResult
    public mutating func compare(org: String, seq: UInt64, orgSeq: UInt64, fields: IndexFields) -> Bool {
        guard failure == nil else { return false }
        let r = withLookup { $0.check(seq: seq, org: org, orgSeq: orgSeq, fields: fields) }
        return record(r, seq: seq, org: org) { IndexHit(seq: seq, orgSeq: orgSeq, fields: fields) }
    }

    /// After the segment's last entry: the first failure, or one for a row no entry called for.
    public mutating func finish() -> VerificationFailure? {
        if let failure { return failure }
        for o in orgs where o.matched < o.rows {
            let m =
                o.matched == 0
                ? "index file lists org \(o.entry.org), which has no entry in the segment"
                : "index file has \(o.rows) rows for org \(o.entry.org), the segment \(o.matched) entries"
            failure = VerificationFailure(
                seq: o.entry.firstSeq, path: path,
                offset: Int64(o.matched == 0 ? SealedIndex.headerSize : Int(o.entry.offset)), message: m)
            return failure
        }
        return nil
    }
}
