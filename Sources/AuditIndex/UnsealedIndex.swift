/// The index rows not in a sealed index file yet, in generations: each holds, by org, the rows
/// added while one segment was open (from `start`, its first sequence number, on). A seal
/// takes a generation that lies inside its segment whole, a move of each org's rows with
/// nothing done per row, so the lock the commit thread waits on is held for microseconds;
/// only a generation that reaches past the segment (the rows recovery adds at once, from every
/// unsealed segment) is split row by row (`UnsealedRows.take`). The generations are a speed-up
/// only: any row may sit in any generation, and every query and seal reads them all.
struct UnsealedIndex {
    struct Generation {
        var start: UInt64
        var byOrg: [String: UnsealedRows] = [:]
        /// The lowest and highest seq of its rows (nil while it has none).
        var seqs: ClosedRange<UInt64>?
    }

    private(set) var generations = [Generation(start: 0)]

    /// Adds `batch`'s rows, moved out of it. `openSince`, the first seq of the segment they
    /// were written to, starts a new generation when it is past the newest one's start.
    mutating func add(_ batch: consuming [(String, IndexHit)], openSince: UInt64?) {
        var rows = consume batch
        guard !rows.isEmpty else { return }
        if let s = openSince, s > generations[generations.count - 1].start {
            generations.append(Generation(start: s))
        }
        let g = generations.count - 1
        var low = UInt64.max
        var high = UInt64.min
        for i in rows.indices {
            low = min(low, rows[i].1.seq)
            high = max(high, rows[i].1.seq)
        }
        generations[g].seqs =
            generations[g].seqs.map { min($0.lowerBound, low)...max($0.upperBound, high) } ?? low...high
        // Each row moved out in order, an empty row (no storage) put in its place: `reverse()`
        // and `popLast` copied every row (a retain and a release of each of its strings).
        rows.withUnsafeMutableBufferPointer { buf in
            guard let base = buf.baseAddress else { return }
            for i in 0..<buf.count {
                let (org, hit) = (base + i).move()
                (base + i).initialize(to: ("", .vacant))
                generations[g].byOrg[org, default: UnsealedRows()].append(consume hit)
            }
        }
    }

    /// Takes every row with `from <= seq < to` out, by org.
    mutating func take(from: UInt64, to: UInt64) -> [String: UnsealedRows] {
        var out: [String: UnsealedRows] = [:]
        func put(_ org: String, _ rows: UnsealedRows) { out[org] = UnsealedRows.merged(out[org], rows) }
        for g in generations.indices {
            guard let seqs = generations[g].seqs, seqs.upperBound >= from, seqs.lowerBound < to else { continue }
            if seqs.lowerBound >= from, seqs.upperBound < to {
                for (org, rows) in generations[g].byOrg { put(org, rows) }
                generations[g].byOrg = [:]
                generations[g].seqs = nil
                continue
            }
            for org in Array(generations[g].byOrg.keys) {
                guard let inside = generations[g].byOrg[org]?.take(from: from, to: to) else { continue }
                if generations[g].byOrg[org]?.isEmpty == true { generations[g].byOrg[org] = nil }
                put(org, inside)
            }
            // What is left: the rows outside the range (their exact bounds are not needed).
            generations[g].seqs = generations[g].byOrg.isEmpty ? nil : seqs
        }
        // Emptied generations go, except the newest (rows still arrive there).
        generations = generations.enumerated().filter { $0.offset == generations.count - 1 || $0.element.seqs != nil }
            .map(\.element)
        return out
    }

    /// `org`'s rows, oldest generation first.
    func parts(of org: String) -> [UnsealedRows] { generations.compactMap { $0.byOrg[org] } }

    /// Whether `org` has a row here.
    func holds(_ org: String) -> Bool { generations.contains { $0.byOrg[org] != nil } }
}
