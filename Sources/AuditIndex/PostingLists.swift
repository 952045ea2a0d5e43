import AuditBase
import AuditEntries
import Foundation
import SegmentStore

#if canImport(Glibc)
import Glibc
#endif

/// Every org's posting list (format-spec.md §7.3): a directory of fixed-size records, one per
/// sealed segment holding the org's entries, each pointing at the org's section in that
/// segment's index file (the one place the rows are kept). An org's newest page, or the first
/// page from a time, reads one binary search of its directory and the sections it needs,
/// whatever the number of segments and orgs; nothing per segment and org stays in memory.
///
/// Posting lists are derived data. Appends are not synced one by one: the `watermark` file
/// records, after a sync, that every sealed segment below it has its records in place, and
/// opening re-derives the records of the segments above it from their index files.
package final class PostingLists: @unchecked Sendable {
    package static let directoryName = "orgs"
    /// The watermark's magic: `AUDPLW02` since records point into the index files. Lists
    /// beside an `AUDPLW01` watermark copied the sections into `.pl` files, and their
    /// records' offsets are into those: opening removes them and derives the lists again.
    static let watermarkMagic: [UInt8] = Array("AUDPLW02".utf8)
    static let oldWatermarkMagic: [UInt8] = Array("AUDPLW01".utf8)
    /// Sync (and move the watermark) after this many sealed segments: a sync writes back one
    /// small file per org, so it is spread out; a crash costs re-deriving at most this many
    /// segments' records at the next start (milliseconds each).
    static let syncEvery = 32

    let directory: String
    /// Where the index files are, which the records point into.
    let indexDirectory: String
    private let lock = NSLock()
    /// Every sealed segment below it has its records here, synced.
    private(set) var done: UInt64
    private var touched: Set<String> = []
    /// Segments put since the watermark last moved, and how many puts since the last sync.
    private var pending: Set<UInt64> = []
    private var putsSinceSync = 0

    init(directory: String, indexDirectory: String, readOnly: Bool) throws {
        self.directory = directory
        self.indexDirectory = indexDirectory
        if !readOnly { try FileOps.makeDirectory(directory) }
        // A damaged watermark only costs a rebuild; verify reports it.
        let mark = try? Self.loadWatermark(directory + "/watermark")
        if mark == nil, !readOnly, try Self.holdsOldLayout(directory) {
            // Lists of the layout before: nothing in them can be read as it is now.
            for name in try FileOps.list(directory) { try FileOps.unlink(directory + "/" + name) }
            try FileOps.fsyncDirectory(directory)
        }
        done = mark ?? 0
    }

    /// Whether `directory` holds posting lists of the layout that copied the sections (its
    /// watermark says `AUDPLW01`, or a `.pl` file is there).
    package static func holdsOldLayout(_ directory: String) throws -> Bool {
        if let b = try? FileOps.readFile(directory + "/watermark", limit: 64), Array(b.prefix(8)) == oldWatermarkMagic {
            return true
        }
        return try FileOps.list(directory).contains { $0.hasSuffix(".pl") }
    }

    /// The file name stem of `org`'s posting files: bytes other than `[A-Za-z0-9_.@:-]`
    /// percent-encoded (so `/` never makes a path).
    package static func stem(_ org: String) -> String {
        var s = ""
        for b in org.utf8 {
            let c = Character(Unicode.Scalar(b))
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || "_.@:-".contains(c) {
                s.append(c)
            } else {
                s += String(format: "%%%02X", b)
            }
        }
        return s
    }

    /// The org whose posting files have stem `s`, or nil when `s` is not one `stem` makes.
    package static func org(ofStem s: String) -> String? {
        var bytes: [UInt8] = []
        var u = Array(s.utf8)[...]
        while let b = u.first {
            if b == UInt8(ascii: "%") {
                guard u.count >= 3, let v = UInt8(String(decoding: u.dropFirst().prefix(2), as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(v)
                u = u.dropFirst(3)
            } else {
                bytes.append(b)
                u = u.dropFirst()
            }
        }
        let org = String(decoding: bytes, as: UTF8.self)
        return stem(org) == s ? org : nil
    }

    package static func loadWatermark(_ path: String) throws -> UInt64 {
        guard let b = try FileOps.readFile(path, limit: 64) else { return 0 }
        if Array(b.prefix(8)) == oldWatermarkMagic {
            throw AuditError(
                .corrupt,
                "posting lists are of the layout before their records pointed into the index files; start auditd once to derive them again",
                path: path, offset: 0)
        }
        guard b.count == 20, Array(b.prefix(8)) == watermarkMagic,
            CRC32C.matches(
                CRC32C.checksum(b.prefix(16)),
                UInt32(littleEndian: b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: UInt32.self) }))
        else {
            throw AuditError(.corrupt, "posting-list watermark is damaged", path: path, offset: 0)
        }
        var r = ByteReader(Array(b[8..<16]))
        return try r.readU64()
    }

    private func saveWatermark(_ n: UInt64) throws {
        var w = ByteWriter(capacity: 20)
        w.write(Self.watermarkMagic)
        w.write(n)
        w.write(CRC32C.checksum(w.bytes))
        try FileOps.replaceFile(directory + "/watermark", contents: w.bytes)
        done = n
    }

    /// Puts `org`'s record of sealed segment `n` (its row `row` in the segment's index file,
    /// `row.offset` being where its section starts in that file) into the org's posting list,
    /// replacing any earlier record of the segment; records of other segments are kept. The
    /// index file is durable before this is called.
    ///
    /// The usual case, a segment after every other above the watermark, appends the record
    /// without syncing (a crash re-derives it). Anything else (a restored segment, a segment
    /// below the watermark) replaces the directory whole, synced.
    func put(org: String, segment n: UInt64, row: IndexDirEntry) throws {
        try lock.withLock {
            let dirPath = directory + "/" + Self.stem(org) + ".pld"
            // A new file's name is made durable with the folder's one fsync: in `sync` before
            // the watermark passes this segment, or by `replaceFile` below; until then a crash
            // may drop it, and the segment's records are derived again. (A seal of a new log
            // creates a file per org: an fsync of the folder for each held the commit thread,
            // waiting for the seal under back-pressure, for a second.)
            let dfd = try FileOps.openOrCreate(dirPath, syncDirectory: false)
            defer { Glibc.close(dfd) }
            func record(_ i: Int) throws -> PostingRecord {
                try PostingRecord(
                    try FileOps.preadExact(
                        dfd, count: PostingRecord.size, at: Int64(i * PostingRecord.size), path: dirPath)[...],
                    org: org, index: i, path: dirPath)
            }
            let count = Int(try FileOps.size(dfd, path: dirPath)) / PostingRecord.size
            var keep = count
            var later = false
            while keep > 0 {
                let r = try record(keep - 1)
                if r.segment < n { break }
                if r.segment > n { later = true }
                keep -= 1
            }
            let rec = PostingRecord(segment: n, row: row)
            if n >= done && !later {
                try FileOps.truncate(dfd, to: Int64(keep * PostingRecord.size), path: dirPath)
                try FileOps.pwriteAll(dfd, rec.encode()[...], at: Int64(keep * PostingRecord.size), path: dirPath)
            } else {
                // Below the watermark, the same record already means it is synced in place (a
                // restored segment whose records were kept).
                if n < done, keep < count, let old = try? record(keep), old == rec { return }
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

    /// Marks `org`'s record of segment `n` (being purged) purged, synced. The rows themselves
    /// left the hot tier with the segment's index file when it was archived. Nothing to do
    /// without such a record.
    func purge(org: String, segment n: UInt64) throws {
        guard var reader = try PostingReader(directory: directory, indexDirectory: indexDirectory, org: org) else {
            return
        }
        let i = try reader.partition { $0.segment >= n }
        guard i < reader.count, var r = try? reader.record(i), r.segment == n, r.state == PostingRecord.live else {
            return
        }
        try lock.withLock {
            r.state = PostingRecord.purged
            let dfd = try FileOps.open(reader.dirPath, O_WRONLY)
            defer { Glibc.close(dfd) }
            try FileOps.pwriteAll(dfd, r.encode()[...], at: Int64(i * PostingRecord.size), path: reader.dirPath)
            try FileOps.fsync(dfd, path: reader.dirPath)
        }
    }

    /// Every record of sealed segment `n` is in place: the watermark may pass it.
    func completed(segment n: UInt64) {
        lock.withLock { if pending.insert(n).inserted { putsSinceSync += 1 } }
    }

    /// After a seal: every `syncEvery` segments (or when `force`), syncs the posting files
    /// written since the last sync and moves the watermark past the segments they complete.
    /// `sealed` lists every sealed segment with an index file in the hot tier.
    func sync(sealed: [UInt64], force: Bool) throws {
        try lock.withLock {
            guard !pending.isEmpty, force || putsSinceSync >= Self.syncEvery else { return }
            // One syncfs rather than an fsync per file: a seal touches a file per org.
            try FileOps.syncFiles(touched.sorted().map { directory + "/" + Self.stem($0) + ".pld" }, anchor: directory)
            try FileOps.fsyncDirectory(directory)
            touched.removeAll()
            // The watermark moves to the first sealed segment still without its records.
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
