import AuditBase
import AuditEntries
import Foundation
import SegmentStore

#if canImport(Glibc)
import Glibc
#endif

/// One record of an org's posting-list directory (format-spec.md §7.3): the org's directory
/// row in one sealed segment's index file, `offset` being where its section starts in that
/// file.
///
///     record := segment:u64 offset:u64 count:u32 firstOrgSeq:u64 firstSeq:u64 lastSeq:u64
///               minTime:i64 maxTime:i64 length:u32 raw:u32 crc:u32 state:u32 recordCrc:u32
package struct PostingRecord: Sendable, Equatable {
    package static let size = 80
    /// The section's rows are readable.
    package static let live: UInt32 = 0
    /// The segment was purged: only the summary remains.
    package static let purged: UInt32 = 1

    package var segment: UInt64
    /// The section's row in the segment's index file, `offset` being from the file's start.
    package var row: IndexDirEntry
    package var state: UInt32

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.write(segment)
        w.write(row.offset)
        w.write(row.count)
        w.write(row.firstOrgSeq)
        w.write(row.firstSeq)
        w.write(row.lastSeq)
        w.write(UInt64(bitPattern: row.minTime))
        w.write(UInt64(bitPattern: row.maxTime))
        w.write(row.length)
        w.write(row.rawLength)
        w.write(row.crc)
        w.write(state)
        w.write(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// Decodes and checks record `index` of `org`'s directory file `path`.
    init(_ b: ArraySlice<UInt8>, org: String, index: Int, path: String) throws(AuditError) {
        let offset = Int64(index * Self.size)
        guard b.count == Self.size else {
            throw AuditError(.corrupt, "posting record \(index) of org \(org) is cut short", path: path, offset: offset)
        }
        var r = ByteReader(Array(b))
        do {
            segment = try r.readU64()
            let off = try r.readU64()
            let count = try r.readU32()
            let firstOrgSeq = try r.readU64()
            let firstSeq = try r.readU64()
            let lastSeq = try r.readU64()
            let minTime = Int64(bitPattern: try r.readU64())
            let maxTime = Int64(bitPattern: try r.readU64())
            let length = try r.readU32()
            let raw = try r.readU32()
            let crc = try r.readU32()
            state = try r.readU32()
            let recordCrc = try r.readU32()
            guard CRC32C.matches(CRC32C.checksum(b.prefix(Self.size - 4)), recordCrc) else {
                throw AuditError(
                    .corrupt, "posting record \(index) of org \(org) fails its checksum", path: path, offset: offset)
            }
            guard segment < SegmentFormat.maxSeq, count > 0, IndexSection.fits(count: count, rawLength: raw),
                firstSeq <= lastSeq, lastSeq < SegmentFormat.maxSeq,
                firstOrgSeq < SegmentFormat.maxSeq, Int(raw) <= SegmentFormat.maxBlockRawSize, length <= 64 << 20,
                off < 1 << 48, state == Self.live || state == Self.purged
            else {
                throw AuditError(
                    .corrupt, "posting record \(index) of org \(org) is out of range", path: path, offset: offset)
            }
            row = IndexDirEntry(
                org: org, count: count, firstOrgSeq: firstOrgSeq, firstSeq: firstSeq, lastSeq: lastSeq,
                minTime: minTime, maxTime: maxTime, offset: off, length: length, rawLength: raw, crc: crc)
        } catch let e as AuditError { throw e } catch {
            throw AuditError(.corrupt, "posting record \(index) of org \(org) is cut short", path: path, offset: offset)
        }
    }

    init(segment: UInt64, row: IndexDirEntry, state: UInt32 = Self.live) {
        self.segment = segment
        self.row = row
        self.state = state
    }
}

/// Reads one org's posting list: its directory of fixed-size records (binary-searchable) and
/// the sections they point to in the index files. Opened per query; reads only what it is
/// asked for.
package struct PostingReader: ~Copyable {
    let org: String
    package let dirPath: String
    /// Where the index files are.
    let indexDirectory: String
    private let dirFD: Int32
    /// Whole records in the directory.
    package let count: Int
    /// A window of records read at once: a page usually needs a few neighbours.
    private var window: (start: Int, records: [PostingRecord]) = (0, [])

    /// Nil when the org has no posting list.
    package init?(directory: String, indexDirectory: String, org: String) throws {
        self.org = org
        self.indexDirectory = indexDirectory
        dirPath = directory + "/" + PostingLists.stem(org) + ".pld"
        guard FileOps.exists(dirPath) else { return nil }
        let d = try FileOps.open(dirPath, O_RDONLY)
        dirFD = d
        count = Int(max(0, (try? FileOps.size(d, path: dirPath)) ?? 0)) / PostingRecord.size
    }

    deinit {
        Glibc.close(dirFD)
    }

    /// Record `i` (0-based, in segment order).
    package mutating func record(_ i: Int) throws -> PostingRecord {
        if i >= window.start && i < window.start + window.records.count { return window.records[i - window.start] }
        // Read a window of up to 64 records around `i`, biased towards where paging goes next.
        let start = max(0, min(i - 48, count - 64))
        let n = min(64, count - start)
        let bytes = try FileOps.preadExact(
            dirFD, count: n * PostingRecord.size, at: Int64(start * PostingRecord.size), path: dirPath)
        var recs: [PostingRecord] = []
        recs.reserveCapacity(n)
        for k in 0..<n {
            recs.append(
                try PostingRecord(
                    bytes[(k * PostingRecord.size)..<((k + 1) * PostingRecord.size)], org: org, index: start + k,
                    path: dirPath))
        }
        window = (start, recs)
        return recs[i - start]
    }

    /// The first record index in `0..<count` for which `pred` holds, `pred` being false then
    /// true along the records (binary search: a bounded number of reads whatever the size).
    package mutating func partition(_ pred: (PostingRecord) -> Bool) throws -> Int {
        var lo = 0
        var hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if pred(try record(mid)) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    /// The index file record `r` points into.
    package func indexPath(_ r: PostingRecord) -> String { indexDirectory + "/" + OrgIndex.fileName(r.segment) }

    /// The section bytes of live record `r`, read from its segment's index file and checked.
    package func section(_ r: PostingRecord) throws -> [UInt8] {
        let path = indexPath(r)
        let fd = try FileOps.open(path, O_RDONLY)
        defer { Glibc.close(fd) }
        let z = try FileOps.preadExact(fd, count: Int(r.row.length), at: Int64(r.row.offset), path: path)
        guard CRC32C.matches(CRC32C.checksum(z), r.row.crc) else {
            throw AuditError(
                .corrupt,
                "posting list of org \(org): its record of segment \(r.segment) does not point at a section of the index file that matches it; remove \(PostingLists.directoryName)/ under the index directory and restart auditd to derive it again",
                path: path, offset: Int64(r.row.offset))
        }
        return z
    }

    /// Decodes live record `r`'s rows in sequence order, stopping when `body` returns false;
    /// without `strings`, their action and actor are left empty (`IndexSection.visit`).
    package func visit(_ r: PostingRecord, strings: Bool = true, _ body: (IndexHit) -> Bool) throws {
        var row = r.row
        row.org = org
        try IndexSection.visit(try section(r), row, path: indexPath(r), strings: strings, body)
    }
}
