import AuditBase

/// Records in sequence order whose bytes stay in the decompressed blocks they were read from:
/// what a pass over whole segments (the verifier) reads without an allocation and a copy per
/// record, which were a third of its reading thread and most of what freeing a batch cost.
public struct RecordRun: Sendable {
    /// Where one record's bytes lie: a buffer of `buffers`, and its bounds there.
    struct Place: Sendable {
        var buffer: Int32
        var start: Int32
        var end: Int32
    }

    /// The records' sequence numbers, in order.
    public let seqs: [UInt64]
    /// Expanded blocks (or single records' bytes) the records lie in.
    let buffers: [[UInt8]]
    /// Per record, in the order of `seqs`.
    let places: [Place]

    /// The records, in the order given, each in a buffer of its own.
    public init(_ records: [StoredRecord]) {
        seqs = records.map(\.seq)
        buffers = records.map(\.payload)
        places = records.indices.map { Place(buffer: Int32($0), start: 0, end: Int32(records[$0].payload.count)) }
    }

    init(seqs: [UInt64], buffers: [[UInt8]], places: [Place]) {
        self.seqs = seqs
        self.buffers = buffers
        self.places = places
    }

    /// Number of records.
    public var count: Int { seqs.count }

    /// Calls `body` with each record's position in `range` and its bytes, in place, in order.
    /// Records in the same buffer share one access to it (an access per record retained and
    /// released the buffer each time: 3 % of a verification).
    public func forEachPayload(
        in range: Range<Int>, _ body: (Int, UnsafeBufferPointer<UInt8>) throws -> Void
    ) rethrows {
        var i = range.lowerBound
        while i < range.upperBound {
            let k = places[i].buffer
            try buffers[Int(k)].withUnsafeBufferPointer { b in
                try places.withUnsafeBufferPointer { pl in
                    while i < range.upperBound, pl[i].buffer == k {
                        try body(i, UnsafeBufferPointer(rebasing: b[Int(pl[i].start)..<Int(pl[i].end)]))
                        i += 1
                    }
                }
            }
        }
    }

    /// A copy of record `i`'s bytes.
    public func payload(_ i: Int) -> [UInt8] {
        let p = places[i]
        return Array(buffers[Int(p.buffer)][Int(p.start)..<Int(p.end)])
    }

    /// The records at positions `range`, sharing this run's buffers.
    public func slice(_ range: Range<Int>) -> RecordRun {
        RecordRun(seqs: Array(seqs[range]), buffers: buffers, places: Array(places[range]))
    }
}

extension SealedSegment {
    /// Every record, in sequence order, in place in its expanded block, checking that each
    /// sequence number appears exactly once, in the block the footer's map names (as
    /// `readAll`, without a copy of each record).
    public func readRun() throws(AuditError) -> RecordRun {
        let n = Int(footer.count)
        var places = [RecordRun.Place](repeating: RecordRun.Place(buffer: -1, start: 0, end: 0), count: n)
        var buffers: [[UInt8]] = []
        buffers.reserveCapacity(footer.blocks.count)
        for i in footer.blocks.indices {
            let b = footer.blocks[i]
            let bytes = try FileOps.preadExact(file.fd, count: b.totalLength, at: b.offset, path: path)
            var misplaced: UInt64?
            var expanded: [UInt8] = []
            let h: BlockHeader
            do {
                (h, _) = try Block.decode(bytes[...], mayHold: nil, dictionary: dictionary) { _, raw in
                    expanded = raw
                } record: { seq, _, place in
                    let k = seq &- footer.firstSeq
                    guard misplaced == nil, k < UInt64(n), places[Int(k)].buffer < 0,
                        footer.seqMap[Int(k)] == UInt32(i)
                    else {
                        if misplaced == nil { misplaced = seq }
                        return
                    }
                    places[Int(k)] = RecordRun.Place(
                        buffer: Int32(buffers.count), start: Int32(place.lowerBound), end: Int32(place.upperBound))
                }
            } catch {
                throw AuditError(.corrupt, error.reason, path: path, offset: b.offset)
            }
            guard h.count == b.count, h.firstSeq == b.firstSeq, h.lastSeq == b.lastSeq else {
                throw AuditError(.corrupt, "block header disagrees with the footer", path: path, offset: b.offset)
            }
            if let misplaced {
                throw AuditError(
                    .corrupt, "sequence number \(misplaced) is duplicated or misplaced", path: path, offset: b.offset)
            }
            buffers.append(expanded)
        }
        if let k = places.firstIndex(where: { $0.buffer < 0 }) {
            throw AuditError(.corrupt, "sequence number \(footer.firstSeq + UInt64(k)) is missing", path: path)
        }
        return RecordRun(seqs: (0..<UInt64(n)).map { footer.firstSeq + $0 }, buffers: buffers, places: places)
    }
}

extension SegmentStore {
    /// The records from `from` up to (not including) `to`, in sequence order, handed to `body`
    /// in runs of at most `batch` (none crosses a segment); `body` answers false to stop. A
    /// sealed segment is read whole, in place (`SealedSegment.readRun`).
    public func scanRuns(
        from: UInt64 = 0, to: UInt64? = nil, batch: Int, _ body: (RecordRun) throws -> Bool
    ) throws {
        let batch = max(1, batch)
        try forEachSegment(from: from, to: to) { info, end in
            if let reader = try passReader(info) {
                let run = try reader.readRun()
                // Positions in the run, clamped without arithmetic that could wrap or trap,
                // whatever the footer says its first sequence number is.
                let first = reader.footer.firstSeq
                let count = min(UInt64(run.count), UInt64.max - first)
                let lo = max(from, first)
                let hi = min(end, first + count)
                guard lo < hi else { return true }
                var i = Int(lo - first)
                let stop = Int(hi - first)
                while i < stop {
                    let j = min(stop, i + batch)
                    if try !body(run.slice(i..<j)) { return false }
                    i = j
                }
                return true
            }
            var records: [StoredRecord] = []
            var keepGoing = true
            try scan(from: max(from, info.firstSeq), to: min(end, info.endSeq)) { r in
                records.append(r)
                guard records.count >= batch else { return true }
                defer { records.removeAll(keepingCapacity: true) }
                keepGoing = try body(RecordRun(records))
                return keepGoing
            }
            guard keepGoing else { return false }
            if !records.isEmpty { return try body(RecordRun(records)) }
            return true
        }
    }
}
