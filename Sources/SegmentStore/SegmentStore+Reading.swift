import AuditBase

/// Reading records by sequence number: one, many (each block they share decompressed once),
/// or every one in a range (format-spec.md §2).
extension SegmentStore {
    static func blockIndex(_ blocks: [BlockRef], _ seq: UInt64) -> Int? {
        var lo = 0
        var hi = blocks.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if blocks[mid].firstSeq + UInt64(blocks[mid].count) <= seq { lo = mid + 1 } else { hi = mid }
        }
        return lo < blocks.count && blocks[lo].firstSeq <= seq ? lo : nil
    }

    /// Reads the record with sequence number `seq`.
    public func read(seq: UInt64) throws(AuditError) -> StoredRecord {
        switch try locate(seq) {
        case .sealed(let info):
            return try sealedSegment(info).read(seq: seq)
        case .blocks(let file, let blocks):
            guard let i = Self.blockIndex(blocks, seq) else {
                throw AuditError(.notFound, "sequence number \(seq) is not stored", path: file.path)
            }
            let records = try OpenSegment.readBlock(blocks[i], file: file)
            let k = Int(seq - blocks[i].firstSeq)
            guard k < records.count, records[k].seq == seq else {
                throw AuditError(
                    .corrupt, "block does not hold sequence number \(seq) where expected", path: file.path,
                    offset: blocks[i].offset)
            }
            return records[k]
        }
    }

    /// Reads many records, decompressing each block they share only once. Order follows `seqs`.
    public func read(seqs: [UInt64]) throws(AuditError) -> [StoredRecord] {
        let records = try read(seqs: seqs, mayHold: nil)
        return records.compactMap { $0 }
    }

    /// `read(seqs:)`, asking `mayHold` of each block first (`Block.decode(_:keep:mayHold:)`):
    /// the records of a block it turns down are nil, neither parsed nor copied.
    public func read(seqs: [UInt64], mayHold: BlockFilter?) throws(AuditError) -> [StoredRecord?] {
        // Where the records are: sealed segments, each with the reader that located its
        // numbers (asked for again, the cache of 64 readers would have dropped it when a call
        // reaches into more segments than that, sparse records over a long history, and it
        // would be opened and its footer parsed anew), and the blocks of open or rotated files.
        enum Source {
            case sealed(SegmentInfo, SealedSegment)
            case blocks(FileHandleRef, [BlockRef])
        }
        var sources: [Source] = []
        // Each number's source, block and place in `seqs`, sorted so that a block's wanted
        // records come together: no dictionary or set, whose hashing was a tenth of a text
        // search's time.
        var found: [(source: Int, block: Int, seq: UInt64, at: Int)] = []
        found.reserveCapacity(seqs.count)
        // A run of numbers at a time, for as long as they stay in one source: a page's numbers
        // mostly share one, and looking it up again for each (the store's lock, its list, the
        // readers' cache, a copy of the source) was most of this function's cost in a long
        // text search.
        var at = 0
        while at < seqs.count {
            switch try locate(seqs[at]) {
            case .sealed(let info):
                let seg = try sealedSegment(info)
                sources.append(.sealed(info, seg))
                let s = sources.count - 1
                repeat {
                    found.append((s, try Self.block(of: seqs[at], in: seg, info), seqs[at], at))
                    at += 1
                } while at < seqs.count && seqs[at] >= info.firstSeq && seqs[at] < info.endSeq
            case .blocks(let file, let blocks):
                guard Self.blockIndex(blocks, seqs[at]) != nil else {
                    throw AuditError(.notFound, "sequence number \(seqs[at]) is not stored", path: file.path)
                }
                sources.append(.blocks(file, blocks))
                let s = sources.count - 1
                while at < seqs.count, let i = Self.blockIndex(blocks, seqs[at]) {
                    found.append((s, i, seqs[at], at))
                    at += 1
                }
            }
        }
        let wants = found.sorted { ($0.source, $0.block, $0.seq) < ($1.source, $1.block, $1.seq) }
        var out = [StoredRecord?](repeating: nil, count: seqs.count)
        var start = 0
        while start < wants.count {
            var end = start + 1
            while end < wants.count, wants[end].source == wants[start].source, wants[end].block == wants[start].block {
                end += 1
            }
            let run = wants[start..<end]
            // The first of the run's wants for `seq`, or its end.
            func lowerBound(_ seq: UInt64) -> Int {
                var lo = start
                var hi = end
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if wants[mid].seq < seq { lo = mid + 1 } else { hi = mid }
                }
                return lo
            }
            let keep = { (seq: UInt64) in
                let i = lowerBound(seq)
                return i < end && wants[i].seq == seq
            }
            let records: [StoredRecord]?
            switch sources[run.first?.source ?? 0] {
            case .sealed(_, let seg):
                records = try seg.readBlock(wants[start].block, keep: keep, mayHold: mayHold)
            case .blocks(let file, let blocks):
                records = try OpenSegment.readBlock(
                    blocks[wants[start].block], file: file, keep: keep, mayHold: mayHold)
            }
            if let records {
                var given = 0
                for r in records {
                    var i = lowerBound(r.seq)
                    while i < end && wants[i].seq == r.seq {
                        if out[wants[i].at] == nil { given += 1 }
                        out[wants[i].at] = r
                        i += 1
                    }
                }
                // A record its block did not yield is damage, unless the filter turned the
                // block down (then all of its wanted records are nil).
                if given != run.count {
                    let missing = run.first { out[$0.at] == nil }?.seq ?? wants[start].seq
                    throw AuditError(
                        .corrupt, "sequence number \(missing) is not where the segment's map says", path: directory)
                }
            }
            start = end
        }
        return out
    }

    /// The block of sealed segment `seg` (`info`) that its map says holds `seq`.
    static func block(of seq: UInt64, in seg: SealedSegment, _ info: SegmentInfo) throws(AuditError) -> Int {
        // Compared before subtracting: a number below the map's first must not trap.
        guard seq >= seg.footer.firstSeq, let k = Int(exactly: seq - seg.footer.firstSeq), k < seg.footer.seqMap.count
        else {
            throw AuditError(.corrupt, "sequence number \(seq) is not in the segment's map", path: info.path)
        }
        return Int(seg.footer.seqMap[k])
    }

    /// The file and block offset holding `seq`, for error reports.
    public func position(of seq: UInt64) -> (path: String, offset: Int64?) {
        switch try? locate(seq) {
        case .sealed(let info):
            guard let s = try? sealedSegment(info), let b = try? Self.block(of: seq, in: s, info),
                b < s.footer.blocks.count
            else { return (info.path, nil) }
            return (info.path, s.footer.blocks[b].offset)
        case .blocks(let file, let blocks):
            return (file.path, Self.blockIndex(blocks, seq).map { blocks[$0].offset })
        case nil:
            return ("(not stored)", nil)
        }
    }

    /// Calls `body` with every durable record in `[from, to)`, in sequence order. `body`
    /// returns false to stop. Sealed segments are read whole, one at a time.
    public func scan(from: UInt64 = 0, to: UInt64? = nil, _ body: (StoredRecord) throws -> Bool) throws {
        try forEachSegment(from: from, to: to) { info, end in
            if let reader = try passReader(info) {
                for r in try reader.readAll() where r.seq >= from && r.seq < end {
                    if try !body(r) { return false }
                }
                return true
            }
            guard case .blocks(let file, let blocks) = try locate(max(from, info.firstSeq)) else { return true }
            for b in blocks where b.firstSeq + UInt64(b.count) > from && b.firstSeq < end {
                for r in try OpenSegment.readBlock(b, file: file) where r.seq >= from && r.seq < end {
                    if try !body(r) { return false }
                }
            }
            return true
        }
    }

    /// Calls `body` with each segment holding records of `[from, to)`, in order, and the end of
    /// that range within the durable log, until it answers false. A retired segment is an error:
    /// a pass over records cannot step over it.
    func forEachSegment(from: UInt64, to: UInt64?, _ body: (SegmentInfo, UInt64) throws -> Bool) throws {
        let end = min(to ?? UInt64.max, endSeq)
        guard from < end else { return }
        for info in segments() where info.endSeq > from && info.firstSeq < end {
            if info.state == .retired { throw AuditError(.retired, info.retiredMessage, path: info.path) }
            if try !body(info, end) { return }
        }
    }

    /// The reader of a sealed segment for a pass over it whole (nil for a segment not sealed):
    /// the cached one, or one of its own rather than evicting the cached ones that queries use.
    func passReader(_ info: SegmentInfo) throws(AuditError) -> SealedSegment? {
        guard info.state == .sealed else { return nil }
        if let cached = cachedReader(info.segment) { return cached }
        return try SealedSegment(path: info.path)
    }
}
