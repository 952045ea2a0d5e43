import Foundation
import SegmentStore
#if canImport(Glibc)
import Glibc
#endif

/// One entry as the org index sees it.
public struct IndexHit: Sendable, Equatable {
    /// Sequence number.
    public var seq: UInt64
    /// Position in the org's chain.
    public var orgSeq: UInt64
    /// Filterable fields.
    public var fields: IndexFields

    /// A row.
    public init(seq: UInt64, orgSeq: UInt64, fields: IndexFields) {
        self.seq = seq; self.orgSeq = orgSeq; self.fields = fields
    }
}

/// A query's filters; nil means "any".
public struct QueryFilter: Sendable, Equatable {
    /// Server receive time from (inclusive), ms.
    public var from: Int64?
    /// Server receive time to (exclusive), ms.
    public var to: Int64?
    /// Category.
    public var category: Category?
    /// Exact action, or a prefix ending in `*` (`auth.login.*`).
    public var action: String?
    /// Actor `type:id`, or just the id.
    public var actor: String?
    /// Outcome.
    public var outcome: Outcome?

    /// No filter.
    public init(from: Int64? = nil, to: Int64? = nil, category: Category? = nil, action: String? = nil, actor: String? = nil, outcome: Outcome? = nil) {
        self.from = from
        self.to = to
        self.category = category
        self.action = action
        self.actor = actor
        self.outcome = outcome
    }

    func matches(_ f: IndexFields) -> Bool {
        if let from, f.time < from { return false }
        if let to, f.time >= to { return false }
        if let category, f.category != category { return false }
        if let outcome, f.outcome != outcome { return false }
        if let action {
            if action.hasSuffix("*") { if !f.action.hasPrefix(action.dropLast()) { return false } }
            else if f.action != action { return false }
        }
        if let actor, f.actor != actor, !f.actor.hasSuffix(":" + actor) { return false }
        return true
    }
}

/// Entries of an org that sit in an archived (or purged) bundle rather than the hot tier.
public struct ArchivedRange: Sendable, Equatable {
    /// The bundle to restore.
    public var bundle: String
    /// Its segment.
    public var segment: UInt64
    /// The segment's sequence range.
    public var firstSeq: UInt64
    /// One past it.
    public var endSeq: UInt64
    /// How many of the org's entries it holds.
    public var entries: UInt64
    /// True if retention expired and the bundle was purged (only its tombstone remains).
    public var purged: Bool
}

/// One org's row in a sealed index file's directory.
struct IndexDirEntry: Sendable {
    var org: String
    var count: UInt32
    var firstOrgSeq: UInt64
    var firstSeq: UInt64
    var lastSeq: UInt64
    var minTime: Int64
    var maxTime: Int64
    var offset: UInt64
    var length: UInt32
    var rawLength: UInt32
    var crc: UInt32
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
struct SealedIndex: Sendable {
    static let headerSize = 8 + 8 + 8 + 8 + 4 + 4 + 4
    let path: String
    let segment: UInt64
    let firstSeq: UInt64
    let endSeq: UInt64
    let dir: [String: IndexDirEntry]

    static func write(path: String, segment: UInt64, firstSeq: UInt64, endSeq: UInt64, byOrg: [(String, [IndexHit])]) throws {
        var dirEntries: [IndexDirEntry] = []
        var sections: [[UInt8]] = []
        var offset = UInt64(0)
        for (org, hits) in byOrg.sorted(by: { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }) where !hits.isEmpty {
            var actions: [String: Int] = [:], actors: [String: Int] = [:]
            var aList: [String] = [], pList: [String] = []
            for h in hits {
                if actions[h.fields.action] == nil { actions[h.fields.action] = aList.count; aList.append(h.fields.action) }
                if actors[h.fields.actor] == nil { actors[h.fields.actor] = pList.count; pList.append(h.fields.actor) }
            }
            var w = ByteWriter(capacity: hits.count * 8)
            for list in [aList, pList] {
                w.writeVarint(UInt64(list.count))
                for s in list { w.writeVarint(UInt64(s.utf8.count)); w.write(Array(s.utf8)) }
            }
            var prevSeq = hits[0].seq, prevTime: Int64 = 0
            for h in hits {
                w.writeVarint(h.seq - prevSeq)
                w.writeSignedVarint(h.fields.time &- prevTime)
                w.write(h.fields.category.code)
                w.write(h.fields.outcome.code)
                w.writeVarint(UInt64(actions[h.fields.action] ?? 0))
                w.writeVarint(UInt64(actors[h.fields.actor] ?? 0))
                prevSeq = h.seq
                prevTime = h.fields.time
            }
            let z = try Zstd.compress(w.bytes[...], level: 3)
            dirEntries.append(IndexDirEntry(
                org: org, count: UInt32(hits.count), firstOrgSeq: hits[0].orgSeq, firstSeq: hits[0].seq, lastSeq: hits[hits.count - 1].seq,
                minTime: hits.map(\.fields.time).min() ?? 0, maxTime: hits.map(\.fields.time).max() ?? 0,
                offset: offset, length: UInt32(z.count), rawLength: UInt32(w.bytes.count), crc: CRC32C.checksum(z)))
            sections.append(z)
            offset += UInt64(z.count)
        }
        var d = ByteWriter()
        for e in dirEntries {
            d.write(UInt8(e.org.utf8.count)); d.write(Array(e.org.utf8))
            d.write(e.count); d.write(e.firstOrgSeq); d.write(e.firstSeq); d.write(e.lastSeq)
            d.write(UInt64(bitPattern: e.minTime)); d.write(UInt64(bitPattern: e.maxTime))
            d.write(e.offset); d.write(e.length); d.write(e.rawLength); d.write(e.crc)
        }
        var f = ByteWriter(capacity: headerSize + d.bytes.count + Int(offset))
        f.write(ChainFormat.indexMagic)
        f.write(segment); f.write(firstSeq); f.write(endSeq)
        f.write(UInt32(dirEntries.count)); f.write(UInt32(d.bytes.count)); f.write(CRC32C.checksum(d.bytes))
        f.write(d.bytes)
        for s in sections { f.write(s) }
        try FileOps.replaceFile(path, contents: f.bytes, mode: 0o444)
    }

    /// Opens an index file and checks its header and directory: every section must lie in
    /// the file, every org's rows within the segment's range (format-spec.md §7.1).
    init(path: String) throws {
        self.path = path
        let fd = try FileOps.open(path, O_RDONLY)
        defer { close(fd) }
        let size = UInt64(max(0, try FileOps.size(fd, path: path)))
        var h = ByteReader(try FileOps.preadExact(fd, count: Self.headerSize, at: 0, path: path))
        guard Array(try h.read(count: 8)) == ChainFormat.indexMagic else { throw StoreError(.corrupt, "not an index file (bad magic)", path: path, offset: 0) }
        segment = try h.readU64(); firstSeq = try h.readU64(); endSeq = try h.readU64()
        guard segment < SegmentFormat.maxSeq, firstSeq <= endSeq, endSeq < SegmentFormat.maxSeq else {
            throw StoreError(.corrupt, "index header names segment \(segment) with sequence range \(firstSeq)..<\(endSeq), out of range", path: path, offset: 8)
        }
        let n = Int(try h.readU32()), dirLen = Int(try h.readU32()), dirCrc = try h.readU32()
        guard dirLen <= 64 << 20, UInt64(Self.headerSize + dirLen) <= size else {
            throw StoreError(.corrupt, "index directory size \(dirLen) is out of range", path: path, offset: 32)
        }
        let dbytes = try FileOps.preadExact(fd, count: dirLen, at: Int64(Self.headerSize), path: path)
        guard CRC32C.matches(CRC32C.checksum(dbytes), dirCrc) else { throw StoreError(.corrupt, "index directory checksum mismatch", path: path, offset: Int64(Self.headerSize)) }
        var r = ByteReader(dbytes)
        var dir: [String: IndexDirEntry] = [:]
        let base = UInt64(Self.headerSize + dirLen)
        let sections = size - base
        do {
            for i in 0..<n {
                let ol = Int(try r.readU8())
                let org = String(decoding: try r.read(count: ol), as: UTF8.self)
                let e = IndexDirEntry(
                    org: org, count: try r.readU32(), firstOrgSeq: try r.readU64(), firstSeq: try r.readU64(), lastSeq: try r.readU64(),
                    minTime: Int64(bitPattern: try r.readU64()), maxTime: Int64(bitPattern: try r.readU64()),
                    offset: try r.readU64(), length: try r.readU32(), rawLength: try r.readU32(), crc: try r.readU32())
                // Compare without adding, so that no field value can wrap around.
                guard e.count > 0, e.firstSeq >= firstSeq, e.firstSeq <= e.lastSeq, e.lastSeq < endSeq,
                      e.firstOrgSeq < SegmentFormat.maxSeq, Int(e.rawLength) <= SegmentFormat.maxBlockRawSize,
                      e.offset <= sections, UInt64(e.length) <= sections - e.offset, dir[org] == nil
                else { throw StoreError(.corrupt, "index directory entry \(i) (org \(org.prefix(64))) is out of range", path: path, offset: Int64(Self.headerSize)) }
                dir[org] = IndexDirEntry(org: e.org, count: e.count, firstOrgSeq: e.firstOrgSeq, firstSeq: e.firstSeq, lastSeq: e.lastSeq,
                                         minTime: e.minTime, maxTime: e.maxTime, offset: base + e.offset, length: e.length,
                                         rawLength: e.rawLength, crc: e.crc)
            }
        } catch let e as StoreError {
            throw e
        } catch { throw StoreError(.corrupt, "index directory cut short", path: path, offset: Int64(Self.headerSize)) }
        self.dir = dir
    }

    func hits(org: String) throws -> [IndexHit] {
        var out: [IndexHit] = []
        try visit(org: org) { out.append($0); return true }
        return out
    }

    /// Decodes `org`'s rows in sequence order, stopping when `body` returns false.
    func visit(org: String, _ body: (IndexHit) -> Bool) throws {
        guard let e = dir[org] else { return }
        let fd = try FileOps.open(path, O_RDONLY)
        defer { close(fd) }
        let z = try FileOps.preadExact(fd, count: Int(e.length), at: Int64(e.offset), path: path)
        guard CRC32C.matches(CRC32C.checksum(z), e.crc) else { throw StoreError(.corrupt, "index section of org \(org) fails its checksum", path: path, offset: Int64(e.offset)) }
        let raw: [UInt8]
        do { raw = try Zstd.decompress(z[...], rawSize: Int(e.rawLength)) } catch {
            throw StoreError(.corrupt, "index section of org \(org) does not decompress (\(error.message))", path: path, offset: Int64(e.offset))
        }
        var r = ByteReader(raw)
        func strings() throws -> [String] {
            let n = try r.readVarint()
            guard n <= UInt64(e.count) else { throw StoreError(.corrupt, "index dictionary too large", path: path, offset: Int64(e.offset)) }
            return try (0..<n).map { _ in
                let len = try r.readVarint()
                guard len <= UInt64(r.remaining) else { throw StoreError(.corrupt, "index dictionary string runs past its section", path: path, offset: Int64(e.offset)) }
                return String(decoding: try r.read(count: Int(len)), as: UTF8.self)
            }
        }
        let actions = try strings(), actors = try strings()
        var seq = e.firstSeq, time: Int64 = 0
        for i in 0..<UInt64(e.count) {
            let ds = try r.readVarint(), dt = try r.readSignedVarint()
            seq = i == 0 ? e.firstSeq : seq &+ ds
            time = time &+ dt
            let c = try r.readU8(), o = try r.readU8()
            let a = try r.readVarint(), p = try r.readVarint()
            guard let cat = Category(code: c), let out2 = Outcome(code: o), a < UInt64(actions.count), p < UInt64(actors.count),
                  seq >= e.firstSeq, seq <= e.lastSeq
            else {
                throw StoreError(.corrupt, "index row \(i) of org \(org) is malformed", path: path, offset: Int64(e.offset))
            }
            if !body(IndexHit(seq: seq, orgSeq: e.firstOrgSeq + i, fields: IndexFields(time: time, category: cat, outcome: out2, action: actions[Int(a)], actor: actors[Int(p)]))) { return }
        }
    }
}

/// Checks an index file on its own (for archive bundles).
public enum SealedIndexCheck {
    /// Opens the index file at `path`, checks its directory checksum and every org section's
    /// checksum, and that it belongs to `segment`. Returns the orgs it lists.
    public static func check(path: String, segment: UInt64) throws -> [String] {
        let idx = try SealedIndex(path: path)
        guard idx.segment == segment else { throw StoreError(.corrupt, "index of segment \(idx.segment), expected \(segment)", path: path) }
        for org in idx.dir.keys { _ = try idx.hits(org: org) }
        return idx.dir.keys.sorted()
    }
}

/// The per-org secondary index: sealed segments' index files plus, for the segments not yet
/// sealed, an in-memory index rebuilt from them at recovery.
public final class OrgIndex: @unchecked Sendable {
    let directory: String
    private let lock = NSLock()
    private var unsealed: [String: [IndexHit]] = [:]
    private var sealedFiles: [UInt64: String] = [:]
    /// org -> the sealed (or archived) segments holding it, ascending, with the bounds of its
    /// entries in each, so a query skips segments without reading their index files.
    private var orgSegments: [String: [SegmentSpan]] = [:]

    struct SegmentSpan: Sendable {
        var segment: UInt64
        var firstSeq: UInt64
        var lastSeq: UInt64
        var minTime: Int64
        var maxTime: Int64
    }
    private var cache: [(UInt64, SealedIndex)] = []
    private static let cacheSize = 256
    /// Entries of segments whose index file is written but whose seal has not completed.
    private var sealing: [UInt64: [(String, [IndexHit])]] = [:]

    /// The seal of `segment` completed: its entries need not be kept aside any longer.
    func sealCompleted(_ segment: UInt64) {
        lock.withLock { sealing[segment] = nil }
    }
    /// Archived segments: their stubs' per-org summaries stand in for their index files.
    private var archived: [UInt64: ArchivedStub] = [:]

    init(directory: String, readOnly: Bool) throws {
        self.directory = directory
        if !readOnly { try FileOps.makeDirectory(directory) }
        for name in try FileOps.list(directory) {
            guard let (n, suffix) = SegmentNames.parse(name) else { continue }
            if suffix == "idx.tmp", !readOnly { try FileOps.unlink(directory + "/" + name); continue }
            guard suffix == "idx" else { continue }
            sealedFiles[n] = directory + "/" + name
        }
        for n in sealedFiles.keys.sorted() {
            let idx = try SealedIndex(path: sealedFiles[n] ?? "")
            for (org, e) in idx.dir { orgSegments[org, default: []].append(SegmentSpan(e, segment: n)) }
        }
    }

    /// The index file name of segment `n`.
    public static func fileName(_ n: UInt64) -> String { String(SegmentNames.sealed(n).dropLast(4)) + ".idx" }

    func hasSealedIndex(_ n: UInt64) -> Bool { lock.withLock { sealedFiles[n] != nil } }

    /// Records freshly committed entries (commit thread).
    func add(_ batch: [(String, IndexHit)]) {
        lock.withLock { for (o, h) in batch { unsealed[o, default: []].append(h) } }
    }

    /// Writes the index file of sealed segment `info` from the in-memory entries in its range,
    /// then moves them out of the unsealed set. They are kept aside until `sealCompleted`, so
    /// that a seal which fails after this step (and is tried again) writes the same file, never
    /// one that lacks the orgs already moved. Returns each org's last entry in the segment.
    @discardableResult
    func seal(_ info: SegmentInfo) throws -> [String: IndexHit] {
        var part: [(String, [IndexHit])] = []
        lock.withLock {
            var byOrg = Dictionary(sealing[info.segment] ?? [], uniquingKeysWith: { $0 + $1 })
            for (org, hits) in unsealed {
                let inside = hits.filter { $0.seq >= info.firstSeq && $0.seq < info.endSeq }
                if !inside.isEmpty { byOrg[org, default: []] += inside }
            }
            part = byOrg.map { ($0.key, $0.value.sorted { $0.seq < $1.seq }) }
        }
        let path = directory + "/" + Self.fileName(info.segment)
        try SealedIndex.write(path: path, segment: info.segment, firstSeq: info.firstSeq, endSeq: info.endSeq, byOrg: part)
        lock.withLock {
            sealing[info.segment] = part
            cache.removeAll { $0.0 == info.segment }
            sealedFiles[info.segment] = path
            for (org, hits) in part {
                guard let f = hits.first, let l = hits.last else { continue }
                orgSegments[org, default: []].removeAll { $0.segment == info.segment }
                orgSegments[org, default: []].append(SegmentSpan(segment: info.segment, firstSeq: f.seq, lastSeq: l.seq,
                                                                 minTime: hits.map(\.fields.time).min() ?? 0, maxTime: hits.map(\.fields.time).max() ?? 0))
                orgSegments[org]?.sort { $0.segment < $1.segment }
                unsealed[org]?.removeAll { $0.seq < info.endSeq }
                if unsealed[org]?.isEmpty == true { unsealed[org] = nil }
            }
        }
        var last: [String: IndexHit] = [:]
        for (o, hits) in part { if let h = hits.last { last[o] = h } }
        return last
    }

    private func sealedIndex(_ n: UInt64) throws -> SealedIndex? {
        if let s = lock.withLock({ cache.first { $0.0 == n }?.1 }) { return s }
        guard let path = lock.withLock({ sealedFiles[n] }) else { return nil }
        let s = try SealedIndex(path: path)
        lock.withLock {
            cache.append((n, s))
            if cache.count > Self.cacheSize { cache.removeFirst() }
        }
        return s
    }

    /// Up to `limit` of `org`'s entries matching `filter`, newest first (seq < `before`) or
    /// oldest first (seq > `after`). Reads only `org`'s sections of the segments that hold it.
    public func query(org: String, filter: QueryFilter, newestFirst: Bool, limit: Int, cursor: UInt64?) throws -> [IndexHit] {
        var out: [IndexHit] = []
        func take(_ hits: [IndexHit]) -> Bool {
            let seq: [IndexHit] = newestFirst ? hits.reversed() : hits
            for h in seq {
                if let c = cursor, newestFirst ? h.seq >= c : h.seq <= c { continue }
                if filter.matches(h.fields) {
                    out.append(h)
                    if out.count >= limit { return true }
                }
            }
            return false
        }
        let (mem, segs) = lock.withLock { (unsealed[org] ?? [], orgSegments[org] ?? []) }
        func sealedPass(_ order: [SegmentSpan]) throws -> Bool {
            for span in order {
                if let c = cursor, newestFirst ? span.firstSeq >= c : span.lastSeq <= c { continue }
                if let from = filter.from, span.maxTime < from { continue }
                if let to = filter.to, span.minTime >= to { continue }
                guard let idx = try sealedIndex(span.segment), idx.dir[org] != nil else { continue }
                if newestFirst {
                    if take(try idx.hits(org: org)) { return true }
                } else {
                    // Oldest first: rows come in order, so stop decoding once the page is full.
                    var full = false
                    try idx.visit(org: org) { h in
                        full = take([h])
                        return !full
                    }
                    if full { return true }
                }
            }
            return false
        }
        if newestFirst {
            if take(mem) { return out }
            _ = try sealedPass(segs.reversed())
        } else {
            if try sealedPass(segs) { return out }
            _ = take(mem)
        }
        return out
    }

    /// True when `org` has any entry in the log (hot, sealed or archived).
    public func holds(org: String) -> Bool {
        lock.withLock { unsealed[org] != nil || orgSegments[org] != nil }
    }

    /// Each org's (count after, last sequence number) in sealed segment `n`, from its index
    /// file's directory; nil when the segment has no index file.
    func orgStates(segment n: UInt64) throws -> [String: (UInt64, UInt64)]? {
        guard let idx = try sealedIndex(n) else { return nil }
        return idx.dir.mapValues { ($0.firstOrgSeq + UInt64($0.count), $0.lastSeq) }
    }

    /// The earliest and latest receive time (ms) in sealed segment `n`, from its index file.
    public func timeRange(segment n: UInt64) throws -> (Int64, Int64)? {
        guard let idx = try sealedIndex(n), !idx.dir.isEmpty else { return nil }
        return (idx.dir.values.map(\.minTime).min() ?? 0, idx.dir.values.map(\.maxTime).max() ?? 0)
    }

    /// Records an archived segment (its index file has moved to the bundle).
    public func addArchived(_ stub: ArchivedStub) {
        lock.withLock {
            archived[stub.segment] = stub
            sealedFiles[stub.segment] = nil
            cache.removeAll { $0.0 == stub.segment }
            for o in stub.orgs where !(orgSegments[o.org] ?? []).contains(where: { $0.segment == stub.segment }) {
                orgSegments[o.org, default: []].append(SegmentSpan(segment: stub.segment, firstSeq: stub.first_seq, lastSeq: o.last_seq,
                                                                   minTime: o.min_time, maxTime: o.max_time))
                orgSegments[o.org]?.sort { $0.segment < $1.segment }
            }
        }
    }

    /// Picks up index files of segments restored into the hot tier.
    public func refreshRestored(_ segments: [SegmentInfo]) {
        for info in segments where info.state == .sealed {
            let wasArchived = lock.withLock { archived[info.segment] != nil }
            let path = directory + "/" + Self.fileName(info.segment)
            guard wasArchived, FileOps.exists(path) else { continue }
            lock.withLock {
                archived[info.segment] = nil
                sealedFiles[info.segment] = path
            }
        }
    }

    /// The archived segments holding `org`'s entries that a query would reach.
    func archivedRanges(org: String, filter: QueryFilter, newestFirst: Bool, cursor: UInt64?) -> [ArchivedRange] {
        lock.withLock {
            var out: [ArchivedRange] = []
            for span in orgSegments[org] ?? [] {
                let n = span.segment
                guard let stub = archived[n], let o = stub.orgs.first(where: { $0.org == org }) else { continue }
                if let c = cursor, newestFirst ? stub.first_seq >= c : o.last_seq <= c { continue }
                if let from = filter.from, o.max_time < from { continue }
                if let to = filter.to, o.min_time >= to { continue }
                out.append(ArchivedRange(bundle: stub.bundle, segment: n, firstSeq: stub.first_seq, endSeq: stub.end_seq,
                                         entries: o.entries, purged: stub.purged_at != nil))
            }
            return out
        }
    }

}

extension OrgIndex.SegmentSpan {
    init(_ e: IndexDirEntry, segment: UInt64) {
        self.init(segment: segment, firstSeq: e.firstSeq, lastSeq: e.lastSeq, minTime: e.minTime, maxTime: e.maxTime)
    }
}
