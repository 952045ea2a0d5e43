import AuditBase
import AuditEntries
import AuditIndex
import Foundation
import LogProofs
import LogTree
import SegmentStore

#if canImport(Glibc)
import Glibc
#endif

/// Reads, proofs and org queries: every entry returned is checked against its leaf hash.
extension Ledger {
    /// Number of durable entries (the tree size).
    public var size: UInt64 { tree.size }

    /// The newest signed checkpoint.
    public var latestCheckpoint: SignedCheckpoint? { checkpoints.latest }
    /// When the newest checkpoint was signed and stored by this process (ms since 1970); nil if
    /// before it opened the log.
    public var latestCheckpointAt: Int64? { checkpoints.latestStoredAt }

    /// Reads entry `seq` and checks it against the stored leaf hash.
    public func entry(seq: UInt64) throws -> StoredEntry {
        guard seq < tree.size else {
            throw AuditError(.notFound, "entry \(seq) does not exist (the log holds \(tree.size))")
        }
        return try checked(try store.read(seq: seq))
    }

    /// Reads many entries at once (each block decompressed once), checking each against its leaf.
    public func entries(seqs: [UInt64]) throws -> [StoredEntry] {
        let size = tree.size
        for s in seqs where s >= size {
            throw AuditError(.notFound, "entry \(s) does not exist (the log holds \(size))")
        }
        let records = try store.read(seqs: seqs)
        let leaves = leafMap(records)
        return try records.map { try checked($0, leaves: leaves) }
    }

    /// Rebuilds a record's link from the tree and checks its hash against the stored leaf;
    /// `leaves` holds leaf hashes read beforehand (`leafMap`), the tree gives the others.
    func checked(_ rec: StoredRecord, leaves: [UInt64: Hash] = [:]) throws -> StoredEntry {
        try Self.rebuild(rec, tree: tree, store: store, leaves: leaves)
    }

    /// The leaf hashes that checking `records` reads (each one's own, its predecessor's and its
    /// org's previous entry's), read in a few runs: a page's entries lie close together. What
    /// cannot be read here is left to `checked`, which reads it alone and reports the failure.
    func leafMap(_ records: [StoredRecord]) -> [UInt64: Hash] {
        let size = tree.size
        var want: [UInt64] = []
        want.reserveCapacity(records.count * 3)
        for r in records where r.seq < size {
            want.append(r.seq)
            if r.seq > 0 { want.append(r.seq - 1) }
            var header = ByteReader(r.payload)
            if (try? header.readVarint()) != nil, let back = try? header.readVarint(), back > 0, back <= r.seq {
                want.append(r.seq - back)
            }
        }
        return (try? tree.leaves(at: want)) ?? [:]
    }

    /// Entry `seq` of the log in data directory `dir`, read without taking the directory (the
    /// daemon may be running and appending): its segment and tree opened read-only, its link
    /// rebuilt and checked against the stored leaf as `entry(seq:)` does.
    public static func entry(inDirectory dir: String, seq: UInt64, retired: any RetiredTier) throws -> StoredEntry {
        let tree = try TreeStore(directory: DataDirectory(dir).tree, readOnly: true)
        guard seq < tree.size else {
            throw AuditError(.notFound, "entry \(seq) does not exist (the log holds \(tree.size))")
        }
        let store = try segmentStore(dir, retired: retired, readOnly: true)
        return try rebuild(try store.read(seq: seq), tree: tree, store: store, leaves: [:])
    }

    private static func rebuild(
        _ rec: StoredRecord, tree: TreeStore, store: SegmentStore, leaves: [UInt64: Hash]
    ) throws -> StoredEntry {
        let seq = rec.seq
        let p = try RecordPayload(bytes: rec.payload)
        let link: Link
        do {
            link = try Link.stored(
                seq: seq, orgSeq: p.orgSeq, prevOrgDelta: p.prevOrgDelta, contentHash: SHA256.hash(p.content),
                leaf: { try leaves[$0] ?? tree.leaf($0) })
        } catch let e as ChainError {
            let pos = store.position(of: seq)
            throw AuditError(.corrupt, "\(e): it was altered", path: pos.path, offset: pos.offset)
        }
        let leaf = try leaves[seq] ?? tree.leaf(seq)
        guard link.leafHash == leaf else {
            let pos = store.position(of: seq)
            throw AuditError(
                .corrupt, "entry \(seq) does not match its leaf hash: it was altered", path: pos.path,
                offset: pos.offset)
        }
        return StoredEntry(
            org: CanonicalScan.topLevelString(p.content, key: "org") ?? "", content: p.content, link: link, hash: leaf)
    }

    /// The archived (or purged) bundles holding `org`'s entries that a query with `filter` and
    /// `cursor` would reach: what a client must restore to see them.
    public func archivedRanges(
        org: String, filter: QueryFilter = .init(), newestFirst: Bool = true, cursor: UInt64? = nil
    ) -> [ArchivedRange] {
        index.archivedRanges(org: org, filter: filter, newestFirst: newestFirst, cursor: cursor)
    }

    /// A page of `org`'s entries matching `filter` and, if `text` is given, containing it
    /// (ASCII case-insensitive, anywhere in the entry). Examines at most `budget` index hits,
    /// and with `timeLimit`, stops examining once that much time has passed; `next` is the
    /// cursor to continue from (nil when the org's log is exhausted). Stopping early never
    /// skips anything: the next page starts where this one stopped.
    ///
    /// The archiver may retire a segment while a page is read: the store stops reading it a
    /// moment before the index is told, and a page whose hits the index gave from it meets a
    /// retired segment. Such a page is read again (for at most a second), by then without it:
    /// its entries are in the archived ranges, as for any page after the retirement.
    public func search(
        org: String, filter: QueryFilter = .init(), text: String? = nil, newestFirst: Bool = true,
        limit: Int = 100, cursor: UInt64? = nil, budget: Int = 50_000,
        timeLimit: Duration? = nil
    ) throws -> (entries: [StoredEntry], next: UInt64?) {
        let giveUp = ContinuousClock.now + .seconds(1)
        while true {
            do {
                return try searchOnce(
                    org: org, filter: filter, text: text, newestFirst: newestFirst, limit: limit, cursor: cursor,
                    budget: budget, timeLimit: timeLimit)
            } catch let e as AuditError where e.code == .retired && ContinuousClock.now < giveUp {
                Thread.sleep(forTimeInterval: 0.002)
            }
        }
    }

    private func searchOnce(
        org: String, filter: QueryFilter, text: String?, newestFirst: Bool, limit: Int, cursor: UInt64?,
        budget: Int, timeLimit: Duration?
    ) throws -> (entries: [StoredEntry], next: UInt64?) {
        var out: [StoredEntry] = []
        var cur = cursor
        var examined = 0
        let needle = text.map(TextMatch.fold)
        let deadline = timeLimit.map { ContinuousClock.now + $0 }
        func outOfTime() -> Bool { deadline.map { ContinuousClock.now >= $0 } ?? false }
        // At least one chunk of candidates per call, so that a page always moves its cursor on
        // (a cursor that did not move would read as the end of the org's log).
        while out.count < limit && examined < budget && (examined == 0 || !outOfTime()) {
            // A text search reads its candidates in large pages: each index page decodes the
            // sections it starts in, so small ones would decode the same rows again and again.
            let page = needle == nil ? limit : min(max(512, budget - examined), 8192)
            // The search wants only each hit's place (seq and org_seq), not its strings.
            let found = try index.query(
                org: org, filter: filter, newestFirst: newestFirst, limit: page, cursor: cur, numbersOnly: true)
            if found.isEmpty { return (out, nil) }
            // The index learns of a group's entries a moment before the tree counts them (the
            // tree is appended after the group's sync). Such entries are not visible yet:
            // newest first, they are skipped (the next page or poll shows them); oldest
            // first, the page stops before them, its cursor at the last entry shown.
            let size = tree.size
            let hits = newestFirst ? found.drop { $0.seq >= size } : found.prefix { $0.seq < size }
            if hits.isEmpty {
                guard newestFirst else { return (out, cur) }
                cur = found.last?.seq
                if found.count < page { return (out, nil) }
                continue
            }
            // Read in chunks, so that the time limit can end the page between two of them. A
            // text search's after the page's first are larger (a busy org's block holds about
            // a hundred entries, and a chunk's edge splits one) and turn down whole blocks the
            // text is not in: a record's content is a run of its block's bytes, so they hold
            // none that match.
            let mayHold: BlockFilter? = needle.map { n in { TextMatch.contains(raw: $0, n) } }
            var records: [StoredRecord?] = []
            var first = hits.startIndex  // the hit `records[0]` is for
            var leaves: [UInt64: Hash] = [:]
            // By index, not by element: a hit carries strings, each copy of it a retain and a
            // release, and a whole-history search meets millions.
            for i in hits.indices {
                if i == first + records.count {
                    if i > hits.startIndex, outOfTime() { return (out, cur) }
                    let chunk = needle == nil || examined == 0 ? 128 : 1024
                    var seqs: [UInt64] = []
                    seqs.reserveCapacity(chunk)
                    for k in i..<min(i + chunk, hits.endIndex) { seqs.append(hits[k].seq) }
                    records = try store.read(seqs: seqs, mayHold: mayHold)
                    first = i
                    // A text search checks only the few entries that match: their leaves are
                    // read one by one.
                    leaves = needle == nil ? leafMap(records.compactMap { $0 }) : [:]
                }
                let seq = hits[i].seq
                let orgSeq = hits[i].orgSeq
                examined += 1
                cur = seq
                guard let rec = records[i - first] else { continue }
                // Free text is matched on the stored bytes first: only what is returned needs
                // its link rebuilt and checked against the tree.
                if let needle {
                    let p = try RecordPayload(bytes: rec.payload)
                    if !TextMatch.contains(p.content, needle) { continue }
                }
                let e = try checked(rec, leaves: leaves)
                // An index is derived data: a row that points at another org's entry is
                // damage, never a reason to show that entry.
                guard e.org == org, e.link.orgSeq == orgSeq else {
                    let pos = store.position(of: seq)
                    throw AuditError(
                        .corrupt,
                        "the index lists entry \(seq) under org \(org) at position \(orgSeq), but it is org \(e.org)'s entry at position \(e.link.orgSeq): the index is damaged; run `auditctl verify`",
                        path: pos.path, offset: pos.offset)
                }
                out.append(e)
                if out.count == limit { return (out, seq) }
            }
            if hits.count < found.count && !newestFirst { return (out, cur) }
            if found.count < page { return (out, nil) }
        }
        return (out, cur)
    }

    /// Inclusion proof of entry `seq` in the tree of `size` (default: the latest checkpoint's).
    public func inclusionProof(seq: UInt64, size: UInt64) throws -> [Hash] {
        try tree.inclusionProof(index: seq, size: size)
    }

    /// Consistency proof between tree sizes.
    public func consistencyProof(old: UInt64, new: UInt64) throws -> [Hash] {
        try tree.consistencyProof(old: old, new: new)
    }

    /// Queries `org`'s entries through the index.
    public func query(
        org: String, filter: QueryFilter = .init(), newestFirst: Bool = true, limit: Int = 100, cursor: UInt64? = nil
    ) throws -> [IndexHit] {
        try index.query(org: org, filter: filter, newestFirst: newestFirst, limit: limit, cursor: cursor)
    }
}
