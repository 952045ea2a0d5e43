import AuditBase

/// The durable part of a segment that is not sealed yet (rotated, or the open one), for a
/// reader that copies the store's files elsewhere as they grow (format-spec.md §2.3: an open
/// segment is its header, then whole blocks, only ever appended to). Its bytes `[0, endOffset)`
/// are durable and never change; a copy of them is a valid open-segment file.
public struct UnsealedSegment: Sendable {
    /// The segment number.
    public let segment: UInt64
    /// Its first sequence number.
    public let firstSeq: UInt64
    /// True for the segment being appended to; false once it was rotated (it only waits for its seal).
    public let isOpen: Bool
    /// Its durable blocks, in order.
    public let blocks: [BlockRef]
    let file: FileHandleRef

    /// One past the last durable byte (the header alone when no block is durable yet).
    public var endOffset: Int64 { blocks.last.map { $0.offset + Int64($0.length) } ?? Int64(SegmentFormat.headerSize) }

    /// One past the last durable sequence number.
    public var endSeq: UInt64 { blocks.last.map { $0.firstSeq + UInt64($0.count) } ?? firstSeq }

    /// The sequence number that starts at byte `offset`, a block boundary (or the header's end).
    public func seq(atOffset offset: Int64) -> UInt64? {
        if offset <= Int64(SegmentFormat.headerSize) { return firstSeq }
        if offset == endOffset { return endSeq }
        return blocks.first { $0.offset == offset }?.firstSeq
    }

    /// The offset at which entry `seq` starts (a block boundary), or nil when no block starts there.
    public func offset(ofSeq seq: UInt64) -> Int64? {
        if seq == firstSeq { return 0 }
        if seq == endSeq { return endOffset }
        return blocks.first { $0.firstSeq == seq }?.offset
    }

    /// Where a copy of the bytes from `offset` (0, or a block boundary) should end: after as
    /// many whole blocks as fit in `maxBytes`, and at least one (the header goes with the first).
    public func boundary(after offset: Int64, maxBytes: Int) -> Int64 {
        var end = max(offset, Int64(SegmentFormat.headerSize))
        var took = false
        for b in blocks where b.offset >= end {
            let next = b.offset + Int64(b.length)
            if took && next - offset > Int64(maxBytes) { break }
            end = next
            took = true
        }
        return min(end, endOffset)
    }

    /// Bytes `[from, to)` of the file, as written (the descriptor outlives the file's removal at seal).
    public func read(from: Int64, to: Int64) throws(AuditError) -> [UInt8] {
        guard from >= 0, from <= to, to <= endOffset else {
            throw AuditError(
                .invalidArgument, "bytes \(from)..<\(to) are not durable in segment \(segment) (ends at \(endOffset))",
                path: file.path)
        }
        return try FileOps.preadExact(file.fd, count: Int(to - from), at: from, path: file.path)
    }
}

extension SegmentStore {
    /// Seals `directory/N.open`, an open-segment file copied from elsewhere that nothing
    /// writes (recovery rebuilds one from copies of its blocks, and segments after it were
    /// sealed already): every block must be whole and continue the sequence (nothing is cut),
    /// the sealed file is written as a seal writes it (format-spec.md §2.4), then the open file
    /// is removed. Returns the sealed segment.
    public static func sealCopy(
        directory: String, segment n: UInt64, options: SegmentStoreOptions = .init()
    ) throws(AuditError) -> SegmentInfo {
        let path = directory + "/" + SegmentNames.open(n)
        let (seg, _) = try OpenSegment.recover(path: path, expectedSegment: n, allowCut: false)
        var records: [StoredRecord] = []
        for b in seg.blocks { records.append(contentsOf: try OpenSegment.readBlock(b, file: seg.file)) }
        guard !records.isEmpty else { throw AuditError(.corrupt, "the open segment holds no entries", path: path) }
        let sealed = try Sealer.seal(
            records: records, segment: n, firstSeq: seg.firstSeq, directory: directory,
            blockTarget: options.blockTarget, level: options.sealLevel, dictionarySize: options.dictionarySize,
            threads: options.sealThreads)
        try FileOps.unlink(path)
        try FileOps.fsyncDirectory(directory)
        return SegmentInfo(segment: n, state: .sealed, path: sealed, firstSeq: seg.firstSeq, endSeq: seg.nextSeq)
    }
}
