import AuditBase
import AuditEntries
import SegmentStore

/// One org's section of an index file (format-spec.md §7), which the org's posting list
/// points at.
enum IndexSection {
    /// The fewest bytes a row takes (two varints, category, outcome, two varints): a
    /// directory row may not claim more rows than its section's raw bytes can hold, so a
    /// count is never trusted for memory.
    static let minRowSize = 6

    /// Whether `count` rows fit in `rawLength` decompressed bytes.
    static func fits(count: UInt32, rawLength: UInt32) -> Bool {
        UInt64(count) * UInt64(minRowSize) <= UInt64(rawLength)
    }

    /// Checks section `z` against its directory row `e` and decodes its rows in sequence
    /// order, stopping when `body` returns false. `path` names the file in errors. Without
    /// `strings`, the rows' action and actor are left empty (still checked against the
    /// section's dictionaries): a caller that reads neither saves a retain and a release of
    /// each, per row.
    static func visit(
        _ z: [UInt8], _ e: IndexDirEntry, path: String, strings withStrings: Bool = true,
        _ body: (IndexHit) -> Bool
    ) throws {
        try visitRows(z, e, path: path) { row, actions, actors in
            body(withStrings ? row.hit(actions: actions, actors: actors) : row.hit(actions: nil, actors: nil))
        }
    }

    /// Every row of a section as stored, with its dictionaries (`SealedIndexRows`).
    static func rows(
        _ z: [UInt8], _ e: IndexDirEntry, path: String
    ) throws -> (rows: [IndexRow], actions: [String], actors: [String]) {
        var rows: [IndexRow] = []
        rows.reserveCapacity(Int(e.count))
        var dictionaries: ([String], [String]) = ([], [])
        try visitRows(z, e, path: path) { row, actions, actors in
            if rows.isEmpty { dictionaries = (actions, actors) }
            rows.append(row)
            return true
        }
        return (rows, dictionaries.0, dictionaries.1)
    }

    /// As `visit`, each row as stored, with the section's dictionaries its action and actor
    /// index: a caller that only compares them copies no string (`SealedIndexRows`).
    static func visitRows(
        _ z: [UInt8], _ e: IndexDirEntry, path: String, _ body: (IndexRow, [String], [String]) -> Bool
    ) throws {
        let org = e.org
        guard CRC32C.matches(CRC32C.checksum(z), e.crc) else {
            throw AuditError(
                .corrupt, "index section of org \(org) fails its checksum", path: path, offset: Int64(e.offset))
        }
        let raw: [UInt8]
        do { raw = try Zstd.decompress(z[...], rawSize: Int(e.rawLength)) } catch {
            throw AuditError(
                .corrupt, "index section of org \(org) does not decompress (\(error.message))", path: path,
                offset: Int64(e.offset))
        }
        var r = ByteReader(raw)
        func strings() throws -> [String] {
            let n = try r.readVarint()
            // Each string takes at least its length byte: a count beyond the bytes left is
            // refused before anything is reserved for it.
            guard n <= UInt64(e.count), n <= UInt64(r.remaining) else {
                throw AuditError(.corrupt, "index dictionary too large", path: path, offset: Int64(e.offset))
            }
            var out: [String] = []
            out.reserveCapacity(Int(n))
            for _ in 0..<n {
                let len = try r.readVarint()
                guard len <= UInt64(r.remaining) else {
                    throw AuditError(
                        .corrupt, "index dictionary string runs past its section", path: path, offset: Int64(e.offset))
                }
                out.append(String(decoding: try r.read(count: Int(len)), as: UTF8.self))
            }
            return out
        }
        let actions = try strings()
        let actors = try strings()
        var seq = e.firstSeq
        var time: Int64 = 0
        for i in 0..<UInt64(e.count) {
            let ds = try r.readVarint()
            let dt = try r.readSignedVarint()
            seq = i == 0 ? e.firstSeq : seq &+ ds
            time = time &+ dt
            let c = try r.readU8()
            let o = try r.readU8()
            let a = try r.readVarint()
            let p = try r.readVarint()
            guard let cat = Category(code: c), let out2 = Outcome(code: o), a < UInt64(actions.count),
                p < UInt64(actors.count),
                seq >= e.firstSeq, seq <= e.lastSeq
            else {
                throw AuditError(
                    .corrupt, "index row \(i) of org \(org) is malformed", path: path, offset: Int64(e.offset))
            }
            let row = IndexRow(
                seq: seq, orgSeq: e.firstOrgSeq + i, time: time, category: cat, outcome: out2, action: Int(a),
                actor: Int(p))
            if !body(row, actions, actors) { return }
        }
    }
}

/// One row of a section as stored: its action and actor are positions in the section's
/// dictionaries (checked to lie inside them).
struct IndexRow {
    var seq: UInt64
    var orgSeq: UInt64
    var time: Int64
    var category: Category
    var outcome: Outcome
    var action: Int
    var actor: Int

    /// The row as the index's readers see it; without the dictionaries, its action and actor
    /// left empty.
    func hit(actions: [String]?, actors: [String]?) -> IndexHit {
        IndexHit(
            seq: seq, orgSeq: orgSeq,
            fields: IndexFields(
                time: time, category: category, outcome: outcome, action: actions?[action] ?? "",
                actor: actors?[actor] ?? ""))
    }
}
