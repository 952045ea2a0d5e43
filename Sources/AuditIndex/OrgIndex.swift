import AuditBase
import AuditEntries
import Foundation
import SegmentStore

#if canImport(Glibc)
import Glibc
#endif

/// The per-org secondary index: sealed segments' index files, each org's posting list of its
/// sections in them (what queries read), and, for the segments not yet sealed, an in-memory
/// index rebuilt from them at recovery.
public final class OrgIndex: @unchecked Sendable {
    let directory: String
    let readOnly: Bool
    let postings: PostingLists
    private let lock = NSLock()
    private var unsealed: [String: [IndexHit]] = [:]
    private var sealedFiles: [UInt64: String] = [:]
    /// Read-only: sealed segments at or above the posting lists' watermark, whose rows are
    /// read from their index files into `unsealed` instead (the daemon may be writing them).
    private var postingLimit: UInt64 = .max
    private var cache: [(UInt64, SealedIndex)] = []
    private static let cacheSize = 16
    /// Entries of segments whose index file is written but whose seal has not completed.
    private var sealing: [UInt64: [(String, ArraySlice<IndexHit>)]] = [:]

    /// The seal of `segment` completed: its entries need not be kept aside any longer.
    package func sealCompleted(_ segment: UInt64) {
        lock.withLock { sealing[segment] = nil }
    }
    /// Retired segments: the retiring tier's per-org summaries stand in for their index files.
    private var archived: [UInt64: (summary: RetiredSummary, orgs: [String: Int])] = [:]

    /// Opens the index in `directory`. `restored` lists sealed segments brought back from the
    /// archive, whose sections their orgs' posting lists may lack.
    /// `archived` lists the segments in the archive tier: an index file of one of them left
    /// behind by an archive move cut short is not theirs to read.
    package init(directory: String, readOnly: Bool, restored: [UInt64] = [], archived: Set<UInt64> = []) throws {
        self.directory = directory
        self.readOnly = readOnly
        if !readOnly { try FileOps.makeDirectory(directory) }
        postings = try PostingLists(
            directory: directory + "/" + PostingLists.directoryName, indexDirectory: directory, readOnly: readOnly)
        for name in try FileOps.list(directory) {
            guard let (n, suffix) = SegmentNames.parse(name) else { continue }
            if suffix == "idx.tmp", !readOnly {
                try FileOps.unlink(directory + "/" + name)
                continue
            }
            guard suffix == "idx", !archived.contains(n) else { continue }
            sealedFiles[n] = directory + "/" + name
        }
        // The sealed segments at or above the watermark: re-derive their records (a crash
        // may have cut them), or, read-only, read their rows from their index files.
        let above = sealedFiles.keys.sorted().filter { $0 >= postings.done || (!readOnly && restored.contains($0)) }
        if readOnly {
            postingLimit = postings.done
            for n in above where n >= postings.done {
                let idx = try SealedIndex(path: sealedFiles[n] ?? "")
                for org in idx.dir.keys { unsealed[org, default: []] += try idx.hits(org: org) }
            }
            for org in unsealed.keys { unsealed[org]?.sort { $0.seq < $1.seq } }
        } else {
            for n in above {
                let idx = try SealedIndex(path: sealedFiles[n] ?? "")
                for org in idx.dir.keys.sorted() {
                    guard let e = idx.dir[org] else { continue }
                    try postings.put(org: org, segment: n, row: e)
                }
                postings.completed(segment: n)
            }
            try postings.sync(sealed: Array(sealedFiles.keys), force: true)
        }
    }

    /// The index file name of segment `n`.
    public static func fileName(_ n: UInt64) -> String { String(SegmentNames.sealed(n).dropLast(4)) + ".idx" }

    package func hasSealedIndex(_ n: UInt64) -> Bool { lock.withLock { sealedFiles[n] != nil } }

    /// Records freshly committed entries (commit thread). Each org's hits stay in seq order,
    /// which `seal` relies on: they come in that order, and one that did not would be put in
    /// its place.
    package func add(_ batch: [(String, IndexHit)]) {
        lock.withLock {
            // One lookup of the org a hit (the commit thread's hot path).
            for i in batch.indices { Self.insertInOrder(batch[i].1, into: &unsealed[batch[i].0, default: []]) }
        }
    }

    /// Puts `h` in its place in `hits` (in seq order): at the end, nearly always.
    static func insertInOrder(_ h: IndexHit, into hits: inout [IndexHit]) {
        if let last = hits.indices.last, hits[last].seq >= h.seq {
            hits.insert(h, at: run(of: hits, from: 0, to: h.seq).count)
        } else {
            hits.append(h)
        }
    }

    /// Writes the index file of sealed segment `info` from the in-memory entries in its range,
    /// then moves them out of the unsealed set. They are kept aside until `sealCompleted`, so
    /// that a seal which fails after this step (and is tried again) writes the same file, never
    /// one that lacks the orgs already moved. Returns each org's last entry in the segment.
    @discardableResult
    package func seal(_ info: SegmentInfo) throws -> [String: IndexHit] {
        // Each org's hits are in seq order (the commit thread adds them so), so the segment's
        // are one run of them, taken as a slice: copying ~67,000 rows here (a retain and a
        // release of each row's strings) was most of the seal's index work.
        var part: [(String, ArraySlice<IndexHit>)] = []
        lock.withLock {
            var byOrg: [String: ArraySlice<IndexHit>] = [:]
            for (org, hits) in sealing[info.segment] ?? [] { byOrg[org] = hits }
            for (org, hits) in unsealed {
                let inside = Self.run(of: hits, from: info.firstSeq, to: info.endSeq)
                guard !inside.isEmpty else { continue }
                if let before = byOrg[org] {
                    byOrg[org] = ArraySlice((before + inside).sorted { $0.seq < $1.seq })
                } else {
                    byOrg[org] = inside
                }
            }
            part = Array(byOrg)
        }
        let path = directory + "/" + Self.fileName(info.segment)
        let rows = try SealedIndex.write(
            path: path, segment: info.segment, firstSeq: info.firstSeq, endSeq: info.endSeq, byOrg: part)
        for row in rows { try postings.put(org: row.org, segment: info.segment, row: row) }
        postings.completed(segment: info.segment)
        let sealedNow: [UInt64] = lock.withLock {
            sealing[info.segment] = part
            cache.removeAll { $0.0 == info.segment }
            sealedFiles[info.segment] = path
            for (org, _) in part {
                guard let hits = unsealed[org] else { continue }
                let gone = Self.run(of: hits, from: 0, to: info.endSeq).count
                if gone == hits.count { unsealed[org] = nil } else { unsealed[org]?.removeFirst(gone) }
            }
            return Array(sealedFiles.keys)
        }
        try postings.sync(sealed: sealedNow, force: false)
        var last: [String: IndexHit] = [:]
        for (o, hits) in part { if let h = hits.last { last[o] = h } }
        return last
    }

    /// The hits of `hits` (in seq order) with `from <= seq < to`: binary searches, no copies.
    static func run(of hits: [IndexHit], from: UInt64, to: UInt64) -> ArraySlice<IndexHit> {
        func firstAtOrAbove(_ s: UInt64) -> Int {
            var lo = 0
            var hi = hits.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if hits[mid].seq < s { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }
        let lo = firstAtOrAbove(from)
        return hits[lo..<max(lo, firstAtOrAbove(to))]
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
    /// oldest first (seq > `after`). Reads the org's posting list: a binary search of its
    /// directory for where the page starts, then only the sections the page needs. With
    /// `numbersOnly`, a hit's action and actor may be empty (unless the filter reads them,
    /// they are not decoded): for a caller that wants only the entries' places.
    public func query(
        org: String, filter: QueryFilter, newestFirst: Bool, limit: Int, cursor: UInt64?, numbersOnly: Bool = false
    ) throws -> [IndexHit] {
        let strings = !numbersOnly || filter.action != nil || filter.actor != nil
        var out: [IndexHit] = []
        // Hits are moved, not copied, from the rows decoded to the page: each carries strings,
        // and a copy is a retain and a release of each (a whole-history search meets millions).
        func consider(_ h: consuming IndexHit) -> Bool {
            if let c = cursor, newestFirst ? h.seq >= c : h.seq <= c { return false }
            if filter.matches(h.fields) {
                out.append(h)
                if out.count >= limit { return true }
            }
            return false
        }
        func take(_ hits: inout [IndexHit]) -> Bool {
            if newestFirst {
                while let h = hits.popLast() {
                    if consider(h) { return true }
                }
            } else {
                for h in hits where consider(h) { return true }
            }
            return false
        }
        var mem = lock.withLock { unsealed[org] ?? [] }
        // A record is read only when its segment is sealed in the hot tier (not archived, not
        // being sealed) and, read-only, below the watermark (above it, `unsealed` holds it).
        func readable(_ r: PostingRecord) -> Bool {
            r.state == PostingRecord.live && r.segment < postingLimit && lock.withLock { sealedFiles[r.segment] != nil }
        }
        func sealedPass() throws -> Bool {
            guard var p = try PostingReader(directory: postings.directory, indexDirectory: directory, org: org) else {
                return false
            }
            // `received_at` never decreases in sequence order (format-spec.md §5.1), so the
            // records are ordered by time as well as by sequence number.
            if newestFirst {
                var i =
                    try p.partition { r in
                        (cursor.map { r.row.firstSeq >= $0 } ?? false)
                            || (filter.to.map { r.row.minTime >= $0 } ?? false)
                    } - 1
                while i >= 0 {
                    let r = try p.record(i)
                    if let from = filter.from, r.row.maxTime < from { break }
                    if readable(r) {
                        var hits: [IndexHit] = []
                        hits.reserveCapacity(Int(r.row.count))
                        try p.visit(r, strings: strings) {
                            hits.append($0)
                            return true
                        }
                        if take(&hits) { return true }
                    }
                    i -= 1
                }
            } else {
                var i = try p.partition { r in
                    (cursor.map { r.row.lastSeq > $0 } ?? true) && (filter.from.map { r.row.maxTime >= $0 } ?? true)
                }
                while i < p.count {
                    let r = try p.record(i)
                    if let to = filter.to, r.row.minTime >= to { break }
                    if readable(r) {
                        // Oldest first: rows come in order, so stop decoding once the page is full.
                        var full = false
                        try p.visit(r, strings: strings) { h in
                            full = consider(h)
                            return !full
                        }
                        if full { return true }
                    }
                    i += 1
                }
            }
            return false
        }
        if newestFirst {
            if take(&mem) { return out }
            _ = try sealedPass()
        } else {
            if try sealedPass() { return out }
            _ = take(&mem)
        }
        return out
    }

    /// True when `org` has any entry in the log (hot, sealed or archived).
    public func holds(org: String) -> Bool {
        if lock.withLock({ unsealed[org] != nil || archived.values.contains { $0.orgs[org] != nil } }) { return true }
        return FileOps.exists(postings.directory + "/" + PostingLists.stem(org) + ".pld")
    }

    /// Each org's (count after, last sequence number) in sealed segment `n`, from its index
    /// file's directory; nil when the segment has no index file.
    package func orgStates(segment n: UInt64) throws -> [String: OrgMark]? {
        guard let idx = try sealedIndex(n) else { return nil }
        return idx.dir.mapValues { OrgMark(count: $0.firstOrgSeq + UInt64($0.count), lastSeq: $0.lastSeq) }
    }

    /// The earliest and latest receive time (ms) in sealed segment `n`, from its index file.
    public func timeRange(segment n: UInt64) throws -> (Int64, Int64)? {
        guard let idx = try sealedIndex(n), !idx.dir.isEmpty else { return nil }
        return (idx.dir.values.map(\.minTime).min() ?? 0, idx.dir.values.map(\.maxTime).max() ?? 0)
    }

    /// Records a retired segment (its index file left with it).
    public func addArchived(_ summary: RetiredSummary) {
        var orgs: [String: Int] = [:]
        for (i, o) in summary.orgs.enumerated() { orgs[o.org] = i }
        lock.withLock {
            archived[summary.segment] = (summary, orgs)
            sealedFiles[summary.segment] = nil
            cache.removeAll { $0.0 == summary.segment }
        }
    }

    /// Before a purge marks retired segment `summary` purged: marks its orgs' records in their
    /// posting lists purged (the rows left the hot tier with its index file).
    public func purgeSections(_ summary: RetiredSummary) throws {
        for o in summary.orgs { try postings.purge(org: o.org, segment: summary.segment) }
    }

    /// Syncs the posting lists and moves their watermark (when the log closes).
    package func close() throws {
        try postings.sync(sealed: lock.withLock { Array(sealedFiles.keys) }, force: true)
    }

    /// Picks up index files of segments restored into the hot tier, their records going back
    /// into their orgs' posting lists first. Throws (and leaves the segment to the next call)
    /// when a posting list cannot be written.
    public func refreshRestored(_ segments: [SegmentInfo]) throws {
        for info in segments where info.state == .sealed {
            let wasArchived = lock.withLock { archived[info.segment] != nil }
            let path = directory + "/" + Self.fileName(info.segment)
            guard wasArchived, FileOps.exists(path) else { continue }
            // Its records are back in its orgs' posting lists before queries may read them.
            if !readOnly {
                let idx = try SealedIndex(path: path)
                for org in idx.dir.keys.sorted() {
                    guard let e = idx.dir[org] else { continue }
                    try postings.put(org: org, segment: info.segment, row: e)
                }
                postings.completed(segment: info.segment)
            }
            lock.withLock {
                archived[info.segment] = nil
                sealedFiles[info.segment] = path
            }
        }
    }

    /// The archived segments holding `org`'s entries that a query would reach.
    package func archivedRanges(org: String, filter: QueryFilter, newestFirst: Bool, cursor: UInt64?) -> [ArchivedRange]
    {
        lock.withLock {
            var out: [ArchivedRange] = []
            for n in archived.keys.sorted() {
                guard let (s, orgs) = archived[n], let k = orgs[org] else { continue }
                let o = s.orgs[k]
                if let c = cursor, newestFirst ? s.firstSeq >= c : o.last_seq <= c { continue }
                if let from = filter.from, o.max_time < from { continue }
                if let to = filter.to, o.min_time >= to { continue }
                out.append(
                    ArchivedRange(
                        bundle: s.label, segment: n, firstSeq: s.firstSeq, endSeq: s.endSeq, entries: o.entries,
                        purged: s.purged, manifest: s.manifest, manifestNote: s.manifestNote))
            }
            return out
        }
    }

}
