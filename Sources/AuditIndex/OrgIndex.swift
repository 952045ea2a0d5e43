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
    let lock = NSLock()
    var unsealed = UnsealedIndex()
    var sealedFiles: [UInt64: String] = [:]
    /// Read-only: sealed segments at or above the posting lists' watermark, whose rows are
    /// read from their index files into `unsealed` instead (the daemon may be writing them).
    var postingLimit: UInt64 = .max
    private var cache: [(UInt64, SealedIndex)] = []
    private static let cacheSize = 16
    /// Entries of segments being sealed, by org: moved out of `unsealed` when the seal begins,
    /// read by queries from here until the segment's index file is in place, and kept until
    /// `sealCompleted` (a seal tried again writes the same file).
    var sealing: [UInt64: [String: UnsealedRows]] = [:]

    /// The seal of `segment` completed: its entries need not be kept aside any longer. They
    /// are let go of after the lock: freeing a segment's rows (about 70,000) under it held the
    /// lock 10-15 ms, and the commit thread's next group waited (four seals at 60,000 entries/s).
    package func sealCompleted(_ segment: UInt64) {
        let done = lock.withLock { sealing.removeValue(forKey: segment) }
        withExtendedLifetime(done) {}
    }
    /// Retired segments: the retiring tier's per-org summaries stand in for their index files.
    var archived: [UInt64: (summary: RetiredSummary, orgs: [String: Int])] = [:]

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
                for org in idx.dir.keys { unsealed.add(try idx.hits(org: org).map { (org, $0) }, openSince: nil) }
            }
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

    /// Records freshly committed entries (commit thread), moved out of `batch`, not copied (a
    /// copy retained each row's three strings, and the batch's end released them: a tenth of
    /// the commit thread's reference counts). `openSince` is the first seq of the segment they
    /// were written to (`UnsealedIndex`). Each org's rows stay in seq order, which `seal`
    /// relies on: they come in that order, and one that did not would be put in its place.
    package func add(_ batch: consuming [(String, IndexHit)], openSince: UInt64? = nil) {
        // Not in a closure: one that captured the batch would hold it, and the moves out of it
        // would copy it first.
        lock.lock()
        defer { lock.unlock() }
        unsealed.add(consume batch, openSince: openSince)
    }

    /// Writes the index file of sealed segment `info` from the in-memory entries in its range.
    /// They move out of the unsealed set into `sealing` first (queries read them there until
    /// the file is in place) and stay there until `sealCompleted`, so that a seal which fails
    /// after this step (and is tried again) writes the same file, never one that lacks the
    /// orgs already moved. Returns each org's last entry in the segment.
    @discardableResult
    package func seal(_ info: SegmentInfo) throws -> [String: IndexHit] {
        let part: [(String, UnsealedRows)] = lock.withLock {
            var byOrg = sealing[info.segment] ?? [:]
            for (org, inside) in unsealed.take(from: info.firstSeq, to: info.endSeq) {
                byOrg[org] = UnsealedRows.merged(byOrg[org], inside)
            }
            sealing[info.segment] = byOrg
            return Array(byOrg)
        }
        let path = directory + "/" + Self.fileName(info.segment)
        let rows = try SealedIndex.write(
            path: path, segment: info.segment, firstSeq: info.firstSeq, endSeq: info.endSeq, byOrg: part)
        for row in rows { try postings.put(org: row.org, segment: info.segment, row: row) }
        postings.completed(segment: info.segment)
        let sealedNow: [UInt64] = lock.withLock {
            cache.removeAll { $0.0 == info.segment }
            sealedFiles[info.segment] = path
            return Array(sealedFiles.keys)
        }
        try postings.sync(sealed: sealedNow, force: false)
        var last: [String: IndexHit] = [:]
        for (o, rows) in part { if let h = rows.hits.last { last[o] = h } }
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
