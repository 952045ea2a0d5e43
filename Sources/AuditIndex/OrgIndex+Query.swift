import AuditBase
import Foundation

/// Queries: an org's entries, newest or oldest first, from its posting list and from the
/// entries not sealed yet (or being sealed).
extension OrgIndex {
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
        // The rows not in a sealed index file yet: segments being sealed whose file is not in
        // place, then the unsealed ones. Copied under the lock (a reference to each array),
        // read after it.
        let mem = lock.withLock { () -> [UnsealedRows] in
            var parts = sealing.filter { sealedFiles[$0.key] == nil }.keys.sorted().compactMap { sealing[$0]?[org] }
            parts += unsealed.parts(of: org)
            return parts
        }
        func takeUnsealed() -> Bool {
            for p in newestFirst ? Array(mem.reversed()) : mem {
                for i in stride(
                    from: newestFirst ? p.count - 1 : 0, to: newestFirst ? -1 : p.count, by: newestFirst ? -1 : 1)
                {
                    if consider(p.hits[i]) { return true }
                }
            }
            return false
        }
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
            if takeUnsealed() { return out }
            _ = try sealedPass()
        } else {
            if try sealedPass() { return out }
            _ = takeUnsealed()
        }
        return out
    }

    /// True when `org` has any entry in the log (hot, sealed or archived).
    public func holds(org: String) -> Bool {
        if lock.withLock({
            unsealed.holds(org) || sealing.values.contains { $0[org] != nil }
                || archived.values.contains { $0.orgs[org] != nil }
        }) {
            return true
        }
        return FileOps.exists(postings.directory + "/" + PostingLists.stem(org) + ".pld")
    }
}
