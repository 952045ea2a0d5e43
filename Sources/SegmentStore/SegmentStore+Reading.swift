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
        var found: [UInt64: StoredRecord] = [:]
        var sealedGroups: [UInt64: (SegmentInfo, [Int: [UInt64]])] = [:]
        var openGroups: [(FileHandleRef, BlockRef, [UInt64])] = []
        // The sealed segment the last sequence number was in: a page's numbers mostly share one,
        // and looking it up again for each (the store's lock, its list, the readers' cache) was
        // most of this function's cost in a long text search.
        var last: (info: SegmentInfo, seg: SealedSegment)?
        func group(_ seq: UInt64, _ info: SegmentInfo, _ seg: SealedSegment) throws(AuditError) {
            // Compared before subtracting: a number below the map's first must not trap.
            guard seq >= seg.footer.firstSeq, let k = Int(exactly: seq - seg.footer.firstSeq),
                k < seg.footer.seqMap.count
            else {
                throw AuditError(.corrupt, "sequence number \(seq) is not in the segment's map", path: info.path)
            }
            sealedGroups[info.segment, default: (info, [:])].1[Int(seg.footer.seqMap[k]), default: []].append(seq)
        }
        for seq in seqs where found[seq] == nil {
            if let l = last, seq >= l.info.firstSeq, seq < l.info.endSeq {
                try group(seq, l.info, l.seg)
                continue
            }
            switch try locate(seq) {
            case .sealed(let info):
                let seg = try sealedSegment(info)
                last = (info, seg)
                try group(seq, info, seg)
            case .blocks(let file, let blocks):
                guard let i = Self.blockIndex(blocks, seq) else {
                    throw AuditError(.notFound, "sequence number \(seq) is not stored", path: file.path)
                }
                if let k = openGroups.firstIndex(where: { $0.1 == blocks[i] }) {
                    openGroups[k].2.append(seq)
                } else {
                    openGroups.append((file, blocks[i], [seq]))
                }
            }
        }
        for (_, (info, byBlock)) in sealedGroups {
            let seg = try sealedSegment(info)
            for (b, want) in byBlock {
                let set = Set(want)
                for r in try seg.readBlock(b, keep: set.contains) { found[r.seq] = r }
            }
        }
        for (file, ref, want) in openGroups {
            let set = Set(want)
            for r in try OpenSegment.readBlock(ref, file: file, keep: set.contains) { found[r.seq] = r }
        }
        var out: [StoredRecord] = []
        out.reserveCapacity(seqs.count)
        for seq in seqs {
            guard let r = found[seq] else {
                throw AuditError(
                    .corrupt, "sequence number \(seq) is not where the segment's map says", path: directory)
            }
            out.append(r)
        }
        return out
    }

    /// The file and block offset holding `seq`, for error reports.
    public func position(of seq: UInt64) -> (path: String, offset: Int64?) {
        switch try? locate(seq) {
        case .sealed(let info):
            if let s = try? sealedSegment(info), seq >= s.footer.firstSeq, seq <= s.footer.lastSeq {
                return (info.path, s.footer.blocks[Int(s.footer.seqMap[Int(seq - s.footer.firstSeq)])].offset)
            }
            return (info.path, nil)
        case .blocks(let file, let blocks):
            return (file.path, Self.blockIndex(blocks, seq).map { blocks[$0].offset })
        case nil:
            return ("(not stored)", nil)
        }
    }

    /// Calls `body` with every durable record in `[from, to)`, in sequence order. `body`
    /// returns false to stop. Sealed segments are read whole, one at a time.
    public func scan(from: UInt64 = 0, to: UInt64? = nil, _ body: (StoredRecord) throws -> Bool) throws {
        let end = min(to ?? UInt64.max, endSeq)
        guard from < end else { return }
        for info in segments() where info.endSeq > from && info.firstSeq < end {
            switch info.state {
            case .retired:
                throw AuditError(.retired, info.retiredMessage, path: info.path)
            case .sealed:
                // A pass over whole segments takes a reader of its own rather than evicting the
                // cached ones that queries use.
                let reader = try cachedReader(info.segment) ?? SealedSegment(path: info.path)
                for r in try reader.readAll() where r.seq >= from && r.seq < end {
                    if try !body(r) { return }
                }
            case .rotated, .open:
                guard case .blocks(let file, let blocks) = try locate(max(from, info.firstSeq)) else { continue }
                for b in blocks where b.firstSeq + UInt64(b.count) > from && b.firstSeq < end {
                    for r in try OpenSegment.readBlock(b, file: file) where r.seq >= from && r.seq < end {
                        if try !body(r) { return }
                    }
                }
            }
        }
    }
}
