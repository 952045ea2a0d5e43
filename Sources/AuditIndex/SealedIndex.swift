import AuditBase
import AuditEntries
import Foundation
import LogProofs
import SegmentStore

#if canImport(Glibc)
import Glibc
#endif

/// One org's row in a sealed index file's directory.
package struct IndexDirEntry: Sendable, Equatable {
    package var org: String
    package var count: UInt32
    package var firstOrgSeq: UInt64
    package var firstSeq: UInt64
    package var lastSeq: UInt64
    package var minTime: Int64
    package var maxTime: Int64
    package var offset: UInt64
    package var length: UInt32
    package var rawLength: UInt32
    package var crc: UInt32
}

/// A sealed segment's org index file (format-spec.md §7):
///
///     file    := header directory section*
///     header  := "AUDIDX01" segment:u64 firstSeq:u64 endSeq:u64 orgs:u32 dirLen:u32 dirCrc:u32
///     directory := (orgLen:u8 org count:u32 firstOrgSeq:u64 firstSeq:u64 lastSeq:u64
///                   minTime:i64 maxTime:i64 offset:u64 len:u32 raw:u32 crc:u32)*   sorted by org
///     section := zstd(actions actors row*)   rows in sequence order
///     actions, actors := n:varint (len:varint bytes)*
///     row     := seqDelta:varint timeDelta:zigzag category:u8 outcome:u8 action:varint actor:varint
package struct SealedIndex: Sendable {
    package static let headerSize = 8 + 8 + 8 + 8 + 4 + 4 + 4
    package let path: String
    package let segment: UInt64
    package let firstSeq: UInt64
    package let endSeq: UInt64
    package let dir: [String: IndexDirEntry]

    /// Opens an index file and checks its header and directory: every section must lie in
    /// the file, every org's rows within the segment's range (format-spec.md §7.1).
    package init(path: String) throws {
        self.path = path
        let fd = try FileOps.open(path, O_RDONLY)
        defer { close(fd) }
        let size = UInt64(max(0, try FileOps.size(fd, path: path)))
        var h = ByteReader(try FileOps.preadExact(fd, count: Self.headerSize, at: 0, path: path))
        guard Array(try h.read(count: 8)) == ChainFormat.indexMagic else {
            throw AuditError(.corrupt, "not an index file (bad magic)", path: path, offset: 0)
        }
        segment = try h.readU64()
        firstSeq = try h.readU64()
        endSeq = try h.readU64()
        guard segment < SegmentFormat.maxSeq, firstSeq <= endSeq, endSeq < SegmentFormat.maxSeq else {
            throw AuditError(
                .corrupt,
                "index header names segment \(segment) with sequence range \(firstSeq)..<\(endSeq), out of range",
                path: path, offset: 8)
        }
        let n = Int(try h.readU32())
        let dirLen = Int(try h.readU32())
        let dirCrc = try h.readU32()
        guard dirLen <= 64 << 20, UInt64(Self.headerSize + dirLen) <= size else {
            throw AuditError(.corrupt, "index directory size \(dirLen) is out of range", path: path, offset: 32)
        }
        let dbytes = try FileOps.preadExact(fd, count: dirLen, at: Int64(Self.headerSize), path: path)
        guard CRC32C.matches(CRC32C.checksum(dbytes), dirCrc) else {
            throw AuditError(.corrupt, "index directory checksum mismatch", path: path, offset: Int64(Self.headerSize))
        }
        var r = ByteReader(dbytes)
        var dir: [String: IndexDirEntry] = [:]
        let base = UInt64(Self.headerSize + dirLen)
        let sections = size - base
        do {
            for i in 0..<n {
                let ol = Int(try r.readU8())
                let org = String(decoding: try r.read(count: ol), as: UTF8.self)
                let e = IndexDirEntry(
                    org: org, count: try r.readU32(), firstOrgSeq: try r.readU64(), firstSeq: try r.readU64(),
                    lastSeq: try r.readU64(),
                    minTime: Int64(bitPattern: try r.readU64()), maxTime: Int64(bitPattern: try r.readU64()),
                    offset: try r.readU64(), length: try r.readU32(), rawLength: try r.readU32(), crc: try r.readU32())
                // Compare without adding, so that no field value can wrap around.
                guard e.count > 0, IndexSection.fits(count: e.count, rawLength: e.rawLength), e.firstSeq >= firstSeq,
                    e.firstSeq <= e.lastSeq, e.lastSeq < endSeq,
                    e.firstOrgSeq < SegmentFormat.maxSeq, Int(e.rawLength) <= SegmentFormat.maxBlockRawSize,
                    e.offset <= sections, UInt64(e.length) <= sections - e.offset, dir[org] == nil
                else {
                    throw AuditError(
                        .corrupt, "index directory entry \(i) (org \(org.prefix(64))) is out of range", path: path,
                        offset: Int64(Self.headerSize))
                }
                dir[org] = IndexDirEntry(
                    org: e.org, count: e.count, firstOrgSeq: e.firstOrgSeq, firstSeq: e.firstSeq, lastSeq: e.lastSeq,
                    minTime: e.minTime, maxTime: e.maxTime, offset: base + e.offset, length: e.length,
                    rawLength: e.rawLength, crc: e.crc)
            }
        } catch let e as AuditError {
            throw e
        } catch { throw AuditError(.corrupt, "index directory cut short", path: path, offset: Int64(Self.headerSize)) }
        self.dir = dir
    }

    package func hits(org: String) throws -> [IndexHit] {
        var out: [IndexHit] = []
        try visit(org: org) {
            out.append($0)
            return true
        }
        return out
    }

    /// Decodes `org`'s rows in sequence order, stopping when `body` returns false.
    func visit(org: String, _ body: (IndexHit) -> Bool) throws {
        guard let e = dir[org] else { return }
        let fd = try FileOps.open(path, O_RDONLY)
        defer { close(fd) }
        let z = try FileOps.preadExact(fd, count: Int(e.length), at: Int64(e.offset), path: path)
        try IndexSection.visit(z, e, path: path, body)
    }

    /// `org`'s section bytes as stored (compressed), checked against its checksum.
    package func section(org: String) throws -> [UInt8]? {
        guard let e = dir[org] else { return nil }
        let fd = try FileOps.open(path, O_RDONLY)
        defer { close(fd) }
        let z = try FileOps.preadExact(fd, count: Int(e.length), at: Int64(e.offset), path: path)
        guard CRC32C.matches(CRC32C.checksum(z), e.crc) else {
            throw AuditError(
                .corrupt, "index section of org \(org) fails its checksum", path: path, offset: Int64(e.offset))
        }
        return z
    }
}

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
            if !body(
                IndexHit(
                    seq: seq, orgSeq: e.firstOrgSeq + i,
                    fields: IndexFields(
                        time: time, category: cat, outcome: out2, action: withStrings ? actions[Int(a)] : "",
                        actor: withStrings ? actors[Int(p)] : "")))
            {
                return
            }
        }
    }
}

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
            var rows = 0
            var first: (row: IndexHit, at: Int)?
            do {
                try idx.visit(org: org) { g in
                    if first == nil, rows < want.count, g != want[rows] { first = (g, rows) }
                    rows += 1
                    return true
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
