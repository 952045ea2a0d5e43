import AuditEntries

/// One org's index rows not yet in a sealed segment's index file, in sequence order.
///
/// The commit thread moves each row in (no copy: a copy retained its strings, and the batch's
/// end released them again); the strings stay with their rows until the segment's seal, whose
/// index file numbers them (`SealedIndex.write`) and whose end frees them, off the commit
/// thread. Numbering them here instead, as they came, put a dictionary lookup of each string
/// and the free of each one already known on the commit thread: a fifth of its time.
package struct UnsealedRows: Sendable {
    /// The rows, in sequence order.
    private(set) var hits: [IndexHit] = []

    package init() {}

    /// Rows of `hits` (in any order).
    package init<C: Collection>(_ hits: C) where C.Element == IndexHit {
        self.hits.reserveCapacity(hits.count)
        for h in hits { append(h) }
    }

    private init(sorted hits: [IndexHit]) { self.hits = hits }

    package var isEmpty: Bool { hits.isEmpty }
    package var count: Int { hits.count }

    /// Adds `h` in its place (at the end, nearly always: rows arrive in sequence order).
    package mutating func append(_ h: consuming IndexHit) {
        if let last = hits.last?.seq, last >= h.seq {
            hits.insert(h, at: Self.first(in: hits, atOrAbove: h.seq))
        } else {
            hits.append(h)
        }
    }

    /// Takes the rows with `from <= seq < to` out: returns them, or nil when none is in the
    /// range. (A generation inside a segment is taken whole, without this: `UnsealedIndex`.)
    package mutating func take(from: UInt64, to: UInt64) -> UnsealedRows? {
        let lo = Self.first(in: hits, atOrAbove: from)
        let hi = max(lo, Self.first(in: hits, atOrAbove: to))
        guard lo < hi else { return nil }
        if lo == 0 && hi == hits.count {
            defer { hits = [] }
            return UnsealedRows(sorted: hits)
        }
        let taken = Array(hits[lo..<hi])
        hits.removeSubrange(lo..<hi)
        return UnsealedRows(sorted: taken)
    }

    /// The rows of both, in sequence order (a seal tried again after a failure takes more);
    /// `b` itself when there is no `a`.
    package static func merged(_ a: UnsealedRows?, _ b: UnsealedRows) -> UnsealedRows {
        guard let a else { return b }
        return UnsealedRows(sorted: (a.hits + b.hits).sorted { $0.seq < $1.seq })
    }

    /// The first position in `hits` (in sequence order) whose seq is at least `s`.
    static func first(in hits: [IndexHit], atOrAbove s: UInt64) -> Int {
        var lo = 0
        var hi = hits.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if hits[mid].seq < s { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
