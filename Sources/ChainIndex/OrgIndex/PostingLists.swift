import Foundation
import SegmentStore
#if canImport(Glibc)
import Glibc
#endif

/// One record of an org's posting-list directory (format-spec.md §7.3): where the org's
/// section of one sealed segment sits in its posting file, and that section's directory row.
///
///     record := segment:u64 offset:u64 count:u32 firstOrgSeq:u64 firstSeq:u64 lastSeq:u64
///               minTime:i64 maxTime:i64 length:u32 raw:u32 crc:u32 state:u32 recordCrc:u32
struct PostingRecord: Sendable, Equatable {
    static let size = 80
    /// The section's rows are readable.
    static let live: UInt32 = 0
    /// The segment was purged: its section's bytes are zero and only the summary remains.
    static let purged: UInt32 = 1

    var segment: UInt64
    /// The section's row in the segment's index file, `offset` being its place in the posting file.
    var row: IndexDirEntry
    var state: UInt32

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.write(segment); w.write(row.offset); w.write(row.count); w.write(row.firstOrgSeq)
        w.write(row.firstSeq); w.write(row.lastSeq)
        w.write(UInt64(bitPattern: row.minTime)); w.write(UInt64(bitPattern: row.maxTime))
        w.write(row.length); w.write(row.rawLength); w.write(row.crc); w.write(state)
        w.write(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// Decodes and checks record `index` of `org`'s directory file `path`.
    init(_ b: ArraySlice<UInt8>, org: String, index: Int, path: String) throws(StoreError) {
        let offset = Int64(index * Self.size)
        guard b.count == Self.size else { throw StoreError(.corrupt, "posting record \(index) of org \(org) is cut short", path: path, offset: offset) }
        var r = ByteReader(Array(b))
        do {
            segment = try r.readU64()
            let off = try r.readU64(), count = try r.readU32(), firstOrgSeq = try r.readU64()
            let firstSeq = try r.readU64(), lastSeq = try r.readU64()
            let minTime = Int64(bitPattern: try r.readU64()), maxTime = Int64(bitPattern: try r.readU64())
            let length = try r.readU32(), raw = try r.readU32(), crc = try r.readU32()
            state = try r.readU32()
            let recordCrc = try r.readU32()
            guard CRC32C.matches(CRC32C.checksum(b.prefix(Self.size - 4)), recordCrc) else {
                throw StoreError(.corrupt, "posting record \(index) of org \(org) fails its checksum", path: path, offset: offset)
            }
            guard segment < SegmentFormat.maxSeq, count > 0, firstSeq <= lastSeq, lastSeq < SegmentFormat.maxSeq,
                  firstOrgSeq < SegmentFormat.maxSeq, Int(raw) <= SegmentFormat.maxBlockRawSize, length <= 64 << 20,
                  off < 1 << 48, state == Self.live || state == Self.purged
            else { throw StoreError(.corrupt, "posting record \(index) of org \(org) is out of range", path: path, offset: offset) }
            row = IndexDirEntry(org: org, count: count, firstOrgSeq: firstOrgSeq, firstSeq: firstSeq, lastSeq: lastSeq,
                                minTime: minTime, maxTime: maxTime, offset: off, length: length, rawLength: raw, crc: crc)
        } catch let e as StoreError { throw e } catch {
            throw StoreError(.corrupt, "posting record \(index) of org \(org) is cut short", path: path, offset: offset)
        }
    }

    init(segment: UInt64, row: IndexDirEntry, state: UInt32 = Self.live) {
        self.segment = segment; self.row = row; self.state = state
    }
}

/// Reads one org's posting list: its directory of fixed-size records (binary-searchable) and
/// the sections they point to. Opened per query; reads only what it is asked for.
struct PostingReader: ~Copyable {
    let org: String
    let dirPath: String
    let dataPath: String
    private let dirFD: Int32
    private let dataFD: Int32
    /// Whole records in the directory.
    let count: Int
    /// A window of records read at once: a page usually needs a few neighbours.
    private var window: (start: Int, records: [PostingRecord]) = (0, [])

    /// Nil when the org has no posting list.
    init?(directory: String, org: String) throws {
        self.org = org
        let stem = directory + "/" + PostingLists.stem(org)
        dirPath = stem + ".pld"; dataPath = stem + ".pl"
        guard FileOps.exists(dirPath) else { return nil }
        let d = try FileOps.open(dirPath, O_RDONLY)
        let p: Int32
        do { p = try FileOps.open(dataPath, O_RDONLY) } catch { Glibc.close(d); throw error }
        dirFD = d; dataFD = p
        count = Int(max(0, (try? FileOps.size(d, path: dirPath)) ?? 0)) / PostingRecord.size
    }

    deinit { Glibc.close(dirFD); Glibc.close(dataFD) }

    /// Record `i` (0-based, in segment order).
    mutating func record(_ i: Int) throws -> PostingRecord {
        if i >= window.start && i < window.start + window.records.count { return window.records[i - window.start] }
        // Read a window of up to 64 records around `i`, biased towards where paging goes next.
        let start = max(0, min(i - 48, count - 64))
        let n = min(64, count - start)
        let bytes = try FileOps.preadExact(dirFD, count: n * PostingRecord.size, at: Int64(start * PostingRecord.size), path: dirPath)
        var recs: [PostingRecord] = []
        recs.reserveCapacity(n)
        for k in 0..<n {
            recs.append(try PostingRecord(bytes[(k * PostingRecord.size)..<((k + 1) * PostingRecord.size)], org: org, index: start + k, path: dirPath))
        }
        window = (start, recs)
        return recs[i - start]
    }

    /// The first record index in `0..<count` for which `pred` holds, `pred` being false then
    /// true along the records (binary search: a bounded number of reads whatever the size).
    mutating func partition(_ pred: (PostingRecord) -> Bool) throws -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if pred(try record(mid)) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    /// The bytes record `r` points to, unchecked (a purged record's zeroes).
    func rawSection(_ r: PostingRecord) throws -> [UInt8] {
        try FileOps.preadExact(dataFD, count: Int(r.row.length), at: Int64(r.row.offset), path: dataPath)
    }

    /// The section bytes of live record `r`, checked.
    func section(_ r: PostingRecord) throws -> [UInt8] {
        let z = try rawSection(r)
        guard CRC32C.matches(CRC32C.checksum(z), r.row.crc) else {
            throw StoreError(.corrupt, "posting list of org \(org): the section of segment \(r.segment) fails its checksum; remove \(PostingLists.directoryName)/ under the index directory and restart auditd to rebuild it from the index files", path: dataPath, offset: Int64(r.row.offset))
        }
        return z
    }

    /// Decodes live record `r`'s rows in sequence order, stopping when `body` returns false.
    func visit(_ r: PostingRecord, _ body: (IndexHit) -> Bool) throws {
        var row = r.row
        row.org = org
        try IndexSection.visit(try section(r), row, path: dataPath, body)
    }
}

/// Every org's posting list (format-spec.md §7.3): its sections of the sealed segments' index
/// files, copied in segment order into one file per org, with a directory of fixed-size
/// records. An org's newest page, or the first page from a time, reads one binary search of
/// its directory and the sections it needs, whatever the number of segments and orgs; nothing
/// per segment and org stays in memory.
///
/// Posting lists are derived data. Appends are not synced one by one: the `watermark` file
/// records, after a sync, that every sealed segment below it has its sections in place, and
/// opening re-derives the sections of the segments above it from their index files.
final class PostingLists: @unchecked Sendable {
    static let directoryName = "orgs"
    static let watermarkMagic: [UInt8] = Array("AUDPLW01".utf8)
    /// Sync (and move the watermark) after this many sealed segments: a sync writes back two
    /// small files per org, so it is spread out; a crash costs re-deriving at most this many
    /// segments' sections at the next start (milliseconds each).
    static let syncEvery = 32

    let directory: String
    private let lock = NSLock()
    /// Every sealed segment below it has its sections here, synced.
    private(set) var done: UInt64
    private var touched: Set<String> = []
    /// Segments put since the watermark last moved, and how many puts since the last sync.
    private var pending: Set<UInt64> = []
    private var putsSinceSync = 0

    init(directory: String, readOnly: Bool) throws {
        self.directory = directory
        if !readOnly { try FileOps.makeDirectory(directory) }
        // A damaged watermark only costs a rebuild; verify reports it.
        done = (try? Self.loadWatermark(directory + "/watermark")) ?? 0
    }

    /// The file name stem of `org`'s posting files: bytes other than `[A-Za-z0-9_.@:-]`
    /// percent-encoded (so `/` never makes a path).
    static func stem(_ org: String) -> String {
        var s = ""
        for b in org.utf8 {
            let c = Character(Unicode.Scalar(b))
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || "_.@:-".contains(c) { s.append(c) }
            else { s += String(format: "%%%02X", b) }
        }
        return s
    }

    /// The org whose posting files have stem `s`, or nil when `s` is not one `stem` makes.
    static func org(ofStem s: String) -> String? {
        var bytes: [UInt8] = []
        var u = Array(s.utf8)[...]
        while let b = u.first {
            if b == UInt8(ascii: "%") {
                guard u.count >= 3, let v = UInt8(String(decoding: u.dropFirst().prefix(2), as: UTF8.self), radix: 16) else { return nil }
                bytes.append(v); u = u.dropFirst(3)
            } else { bytes.append(b); u = u.dropFirst() }
        }
        let org = String(decoding: bytes, as: UTF8.self)
        return stem(org) == s ? org : nil
    }

    static func loadWatermark(_ path: String) throws -> UInt64 {
        guard let b = try FileOps.readFile(path, limit: 64) else { return 0 }
        guard b.count == 20, Array(b.prefix(8)) == watermarkMagic, CRC32C.matches(CRC32C.checksum(b.prefix(16)), UInt32(littleEndian: b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: UInt32.self) })) else {
            throw StoreError(.corrupt, "posting-list watermark is damaged", path: path, offset: 0)
        }
        var r = ByteReader(Array(b[8..<16]))
        return try r.readU64()
    }

    private func saveWatermark(_ n: UInt64) throws {
        var w = ByteWriter(capacity: 20)
        w.write(Self.watermarkMagic); w.write(n); w.write(CRC32C.checksum(w.bytes))
        try FileOps.replaceFile(directory + "/watermark", contents: w.bytes)
        done = n
    }

    /// Puts `org`'s section `z` of sealed segment `n` (its row `row` in the segment's index
    /// file) into the org's posting list, replacing any earlier copy; records of other
    /// segments are kept.
    ///
    /// The usual case, a segment after every other above the watermark, appends the section
    /// and the record without syncing (a crash re-derives them). Anything else (a restored
    /// segment, a segment below the watermark) must never leave a synced record without its
    /// section: the section is appended and synced, then the directory is replaced whole.
    func put(org: String, segment n: UInt64, section z: [UInt8], row: IndexDirEntry) throws {
        try lock.withLock {
            let stem = directory + "/" + Self.stem(org)
            let dirPath = stem + ".pld", dataPath = stem + ".pl"
            let dfd = try FileOps.openOrCreate(dirPath)
            defer { Glibc.close(dfd) }
            let pfd = try FileOps.openOrCreate(dataPath)
            defer { Glibc.close(pfd) }
            func record(_ i: Int) throws -> PostingRecord {
                try PostingRecord(try FileOps.preadExact(dfd, count: PostingRecord.size, at: Int64(i * PostingRecord.size), path: dirPath)[...],
                                  org: org, index: i, path: dirPath)
            }
            let count = Int(try FileOps.size(dfd, path: dirPath)) / PostingRecord.size
            let dataEnd = UInt64(try FileOps.size(pfd, path: dataPath))
            var keep = count
            var later = false
            while keep > 0 {
                let r = try record(keep - 1)
                if r.segment < n { break }
                if r.segment > n { later = true }
                keep -= 1
            }
            var placed = row
            placed.offset = dataEnd
            let rec = PostingRecord(segment: n, row: placed)
            if n >= done && !later {
                try FileOps.truncate(dfd, to: Int64(keep * PostingRecord.size), path: dirPath)
                try FileOps.pwriteAll(pfd, z[...], at: Int64(dataEnd), path: dataPath)
                try FileOps.pwriteAll(dfd, rec.encode()[...], at: Int64(keep * PostingRecord.size), path: dirPath)
            } else {
                // Below the watermark, an identical record already means its section is synced
                // in place (a restored segment whose sections were kept).
                if n < done, keep < count, let old = try? record(keep), old.segment == n, old.state == PostingRecord.live,
                   old.row.crc == row.crc, old.row.length == row.length, old.row.count == row.count, old.row.rawLength == row.rawLength,
                   let bytes = try? FileOps.preadExact(pfd, count: Int(old.row.length), at: Int64(old.row.offset), path: dataPath),
                   bytes == z { return }
                try FileOps.pwriteAll(pfd, z[...], at: Int64(dataEnd), path: dataPath)
                try FileOps.fsync(pfd, path: dataPath)
                var out = ByteWriter(capacity: (count + 1) * PostingRecord.size)
                for i in 0..<count {
                    let r = try record(i)
                    if i == keep { out.write(rec.encode()) }
                    if r.segment != n { out.write(r.encode()) }
                }
                if keep == count { out.write(rec.encode()) }
                try FileOps.replaceFile(dirPath, contents: out.bytes)
            }
            touched.insert(org)
        }
    }

    /// Marks `org`'s record of segment `n` (being purged) purged, then zeroes its section,
    /// each synced: the rows of purged entries do not outlive them. In that order, a crash in
    /// between leaves a record that queries skip (they skip archived segments anyway), and
    /// the purge, tried again, zeroes what is left. Nothing to do without such a record.
    func purge(org: String, segment n: UInt64) throws {
        guard var reader = try PostingReader(directory: directory, org: org) else { return }
        let i = try reader.partition { $0.segment >= n }
        guard i < reader.count, var r = try? reader.record(i), r.segment == n else { return }
        try lock.withLock {
            if r.state == PostingRecord.live {
                // Whatever the directory holds must not become durable ahead of its sections.
                let pfd = try FileOps.open(reader.dataPath, O_RDONLY)
                defer { Glibc.close(pfd) }
                try FileOps.fsync(pfd, path: reader.dataPath)
                r.state = PostingRecord.purged
                let dfd = try FileOps.open(reader.dirPath, O_WRONLY)
                defer { Glibc.close(dfd) }
                try FileOps.pwriteAll(dfd, r.encode()[...], at: Int64(i * PostingRecord.size), path: reader.dirPath)
                try FileOps.fsync(dfd, path: reader.dirPath)
            }
            guard try !reader.rawSection(r).allSatisfy({ $0 == 0 }) else { return }
            let fd = try FileOps.open(reader.dataPath, O_WRONLY)
            defer { Glibc.close(fd) }
            try FileOps.pwriteAll(fd, [UInt8](repeating: 0, count: Int(r.row.length))[...], at: Int64(r.row.offset), path: reader.dataPath)
            try FileOps.fsync(fd, path: reader.dataPath)
        }
    }

    /// Every section of sealed segment `n` is in place: the watermark may pass it.
    func completed(segment n: UInt64) {
        lock.withLock { if pending.insert(n).inserted { putsSinceSync += 1 } }
    }

    /// After a seal: every `syncEvery` segments (or when `force`), syncs the posting files
    /// written since the last sync and moves the watermark past the segments they complete.
    /// `sealed` lists every sealed segment with an index file in the hot tier.
    func sync(sealed: [UInt64], force: Bool) throws {
        try lock.withLock {
            guard !pending.isEmpty, force || putsSinceSync >= Self.syncEvery else { return }
            // One syncfs rather than an fsync per file: a seal touches two files per org.
            try FileOps.syncFiles(touched.sorted().flatMap { org in [".pl", ".pld"].map { directory + "/" + Self.stem(org) + $0 } }, anchor: directory)
            try FileOps.fsyncDirectory(directory)
            touched.removeAll()
            // The watermark moves to the first sealed segment still without its sections.
            var mark = done
            for n in sealed.sorted() where n >= mark {
                guard pending.contains(n) || n < done else { break }
                mark = n + 1
            }
            pending = pending.filter { $0 >= mark }
            putsSinceSync = 0
            if mark > done { try saveWatermark(mark) }
        }
    }
}
