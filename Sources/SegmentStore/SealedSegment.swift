import AuditBase

#if canImport(Glibc)
import Glibc
#endif

/// One block as listed in a sealed segment's footer.
public struct FooterBlock: Sendable, Equatable {
    /// Offset of the block header.
    public var offset: Int64
    /// Compressed payload length.
    public var payloadLength: UInt32
    /// Decompressed length.
    public var rawLength: UInt32
    /// Records in the block.
    public var count: UInt32
    /// Smallest sequence number in the block.
    public var firstSeq: UInt64
    /// Largest sequence number in the block.
    public var lastSeq: UInt64
    /// Shared grouping key, or 0.
    public var key: UInt64

    /// Header plus payload length.
    public var totalLength: Int { SegmentFormat.blockHeaderSize + Int(payloadLength) }
}

/// The footer of a sealed segment (format-spec.md §2.4).
///
///     footer  := magic segment:u64 firstSeq:u64 lastSeq:u64 count:u64 nblocks:u32
///                block-entry{nblocks} seqmapRaw:u32 seqmapLen:u32 zstd(seqmap) dictionary?
///     magic   := "AUDFOOT1" (no dictionary) | "AUDFOOT2" (a dictionary follows)
///     dictionary := dictLen:u32 bytes[dictLen]     (1 ≤ dictLen ≤ 1 MiB)
///     block-entry := offset:u64 payloadLen:u32 rawLen:u32 count:u32 firstSeq:u64 lastSeq:u64 key:u64
///     seqmap  := blockIndex:u32 for each sequence number firstSeq...lastSeq, in order
///     trailer := footerOffset:u64 footerLen:u32 crc32c(footer):u32 "AUDEND01"
public struct SegmentFooter: Sendable, Equatable {
    /// The segment number.
    public var segment: UInt64
    /// First sequence number.
    public var firstSeq: UInt64
    /// Last sequence number.
    public var lastSeq: UInt64
    /// Number of records.
    public var count: UInt64
    /// The blocks, in file order.
    public var blocks: [FooterBlock]
    /// For each sequence number from `firstSeq`, the index of the block holding it.
    public var seqMap: [UInt32]
    /// The zstd dictionary every block is compressed with, or empty for none.
    public var dictionary: [UInt8] = []

    func encoded(level: Int32) throws(ZstdError) -> [UInt8] {
        var w = ByteWriter(
            capacity: 64 + blocks.count * SegmentFormat.footerBlockEntrySize + dictionary.count)
        w.write(dictionary.isEmpty ? SegmentFormat.footerMagic : SegmentFormat.footerMagicWithDictionary)
        w.write(segment)
        w.write(firstSeq)
        w.write(lastSeq)
        w.write(count)
        w.write(UInt32(blocks.count))
        for b in blocks {
            w.write(UInt64(b.offset))
            w.write(b.payloadLength)
            w.write(b.rawLength)
            w.write(b.count)
            w.write(b.firstSeq)
            w.write(b.lastSeq)
            w.write(b.key)
        }
        var m = ByteWriter(capacity: seqMap.count * 4)
        for i in seqMap { m.write(i) }
        let z = try Zstd.compress(m.bytes[...], level: level)
        w.write(UInt32(m.bytes.count))
        w.write(UInt32(z.count))
        w.write(z)
        if !dictionary.isEmpty {
            w.write(UInt32(dictionary.count))
            w.write(dictionary)
        }
        return w.bytes
    }

    static func parse(_ bytes: [UInt8], path: String, offset: Int64) throws(AuditError) -> SegmentFooter {
        var r = ByteReader(bytes)
        func bad(_ m: String) -> AuditError {
            AuditError(.corrupt, "sealed segment footer: \(m)", path: path, offset: offset)
        }
        do {
            guard let hasDictionary = SegmentFormat.footerHasDictionary(magic: try r.read(count: 8)) else {
                throw bad("bad magic")
            }
            let segment = try r.readU64()
            let first = try r.readU64()
            let last = try r.readU64()
            let count = try r.readU64()
            let n = Int(try r.readU32())
            guard last >= first, last < SegmentFormat.maxSeq, count == last - first + 1,
                count <= SegmentFormat.maxSegmentRecords,
                n <= r.remaining / SegmentFormat.footerBlockEntrySize
            else {
                throw bad("counts disagree (first \(first), last \(last), count \(count), \(n) blocks)")
            }
            var blocks: [FooterBlock] = []
            blocks.reserveCapacity(n)
            for i in 0..<n {
                let offset = try r.readU64()
                let b = FooterBlock(
                    offset: Int64(truncatingIfNeeded: offset), payloadLength: try r.readU32(),
                    rawLength: try r.readU32(),
                    count: try r.readU32(), firstSeq: try r.readU64(), lastSeq: try r.readU64(), key: try r.readU64())
                guard offset <= UInt64(Int64.max), b.firstSeq >= first, b.lastSeq <= last, b.firstSeq <= b.lastSeq,
                    b.count > 0
                else {
                    throw bad(
                        "block entry \(i) is out of range (offset \(offset), sequence \(b.firstSeq)...\(b.lastSeq))")
                }
                blocks.append(b)
            }
            let rawLen = Int(try r.readU32())
            let zLen = Int(try r.readU32())
            guard UInt64(rawLen) == count * 4 else {
                throw bad("sequence map size \(rawLen) does not match \(count) records")
            }
            let z = try r.read(count: zLen)
            let raw: [UInt8]
            do { raw = try Zstd.decompress(z, rawSize: rawLen) } catch { throw bad("sequence map: \(error.message)") }
            var mr = ByteReader(raw)
            var map = [UInt32]()
            map.reserveCapacity(Int(count))
            for _ in 0..<count {
                let b = try mr.readU32()
                guard Int(b) < blocks.count else { throw bad("sequence map names block \(b) of \(blocks.count)") }
                map.append(b)
            }
            var dictionary: [UInt8] = []
            if hasDictionary {
                let n = Int(try r.readU32())
                guard n >= 1, n <= SegmentFormat.maxDictionarySize else {
                    throw bad("dictionary of \(n) bytes (1 to \(SegmentFormat.maxDictionarySize) allowed)")
                }
                dictionary = Array(try r.read(count: n))
            }
            guard r.isAtEnd else { throw bad("\(r.remaining) bytes after its end") }
            return SegmentFooter(
                segment: segment, firstSeq: first, lastSeq: last, count: count, blocks: blocks, seqMap: map,
                dictionary: dictionary)
        } catch let e as AuditError {
            throw e
        } catch {
            throw bad("cut short")
        }
    }
}

/// The last 24 bytes of a sealed segment, which locate its footer:
///
///     trailer := footerOffset:u64 footerLen:u32 crc32c(footer):u32 "AUDEND01"
enum SegmentTrailer {
    /// Reads and checks the trailer of the file `fd` (`fileSize` bytes long): the footer must
    /// lie between the header and the trailer, and be at most `maxFooterSize` bytes.
    /// Returns the footer's offset, length and checksum.
    static func read(fd: Int32, fileSize: Int64, path: String) throws(AuditError) -> (Int64, Int, UInt32) {
        let trailerAt = fileSize - Int64(SegmentFormat.trailerSize)
        guard trailerAt >= Int64(SegmentFormat.headerSize) else {
            throw AuditError(
                .corrupt, "sealed segment is too short (\(fileSize) bytes) to hold a header and trailer", path: path,
                offset: 0)
        }
        var t = ByteReader(try FileOps.preadExact(fd, count: SegmentFormat.trailerSize, at: trailerAt, path: path))
        do {
            let fOff = try t.readU64()
            let fLen = try t.readU32()
            let fCrc = try t.readU32()
            guard Array(try t.read(count: 8)) == SegmentFormat.trailerMagic else {
                throw AuditError(
                    .corrupt, "trailer magic is not AUDEND01 (truncated or not sealed)", path: path, offset: trailerAt)
            }
            // Compare without adding, so that no value of the two fields can overflow.
            guard fOff >= UInt64(SegmentFormat.headerSize), fOff <= UInt64(trailerAt),
                Int(fLen) <= SegmentFormat.maxFooterSize,
                UInt64(trailerAt) - fOff == UInt64(fLen)
            else {
                throw AuditError(
                    .corrupt, "trailer points outside the file (footer at \(fOff), \(fLen) bytes)", path: path,
                    offset: trailerAt)
            }
            return (Int64(fOff), Int(fLen), fCrc)
        } catch let e as AuditError {
            throw e
        } catch {
            throw AuditError(.corrupt, "trailer cut short", path: path, offset: trailerAt)
        }
    }
}

/// A sealed, read-only segment: blocks clustered by grouping key, a footer that locates every
/// sequence number, and a trailer that locates the footer.
public final class SealedSegment: @unchecked Sendable {
    /// The file's path.
    public let path: String
    /// The header.
    public let header: SegmentHeader
    /// The footer.
    public let footer: SegmentFooter
    /// Where the footer starts (the end of the last block).
    public let footerOffset: Int64
    /// The footer's dictionary, ready to decompress blocks; nil when it has none.
    let dictionary: ZstdDictionary?
    let file: FileHandleRef

    /// Opens a sealed segment and checks its header, trailer and footer checksum.
    public init(path: String) throws(AuditError) {
        let fd = try FileOps.open(path, O_RDONLY)
        file = FileHandleRef(fd: fd, path: path)
        self.path = path
        let size = try FileOps.size(fd, path: path)
        guard size >= Int64(SegmentFormat.headerSize + SegmentFormat.trailerSize) else {
            throw AuditError(
                .corrupt, "sealed segment is too short (\(size) bytes) to hold a header and trailer", path: path,
                offset: 0)
        }
        header = try SegmentHeader.parse(
            try FileOps.preadExact(fd, count: SegmentFormat.headerSize, at: 0, path: path), path: path)
        guard header.flags == SegmentFormat.flagSealed else {
            throw AuditError(.corrupt, "header is not marked sealed", path: path, offset: 10)
        }
        let (fOff, fLen, fCrc) = try SegmentTrailer.read(fd: fd, fileSize: size, path: path)
        let fb = try FileOps.preadExact(fd, count: fLen, at: fOff, path: path)
        guard CRC32C.matches(CRC32C.checksum(fb), fCrc) else {
            throw AuditError(.corrupt, "footer checksum mismatch", path: path, offset: fOff)
        }
        footer = try SegmentFooter.parse(fb, path: path, offset: fOff)
        footerOffset = fOff
        if footer.dictionary.isEmpty {
            dictionary = nil
        } else {
            guard let d = ZstdDictionary(bytes: footer.dictionary) else {
                throw AuditError(.io, "libzstd could not load the segment's dictionary (out of memory?)", path: path)
            }
            dictionary = d
        }
        guard footer.segment == header.segment, footer.firstSeq == header.firstSeq else {
            throw AuditError(
                .corrupt,
                "footer (segment \(footer.segment), first \(footer.firstSeq)) disagrees with header (segment \(header.segment), first \(header.firstSeq))",
                path: path, offset: fOff)
        }
        for b in footer.blocks
        where b.offset < Int64(SegmentFormat.headerSize) || b.offset > fOff || Int64(b.totalLength) > fOff - b.offset {
            throw AuditError(
                .corrupt, "footer lists a block outside the data area (offset \(b.offset))", path: path, offset: fOff)
        }
    }

    /// Reads, checks and decodes block `index`.
    public func readBlock(_ index: Int, keep: ((UInt64) -> Bool)? = nil) throws(AuditError) -> [StoredRecord] {
        try readBlock(index, keep: keep, mayHold: nil) ?? []
    }

    /// `readBlock(_:keep:)`, or nil when `mayHold` says the block holds nothing wanted
    /// (`Block.decode(_:keep:mayHold:)`).
    public func readBlock(
        _ index: Int, keep: ((UInt64) -> Bool)?, mayHold: BlockFilter?
    ) throws(AuditError) -> [StoredRecord]? {
        guard index >= 0, index < footer.blocks.count else {
            throw AuditError(.invalidArgument, "block \(index) does not exist", path: path)
        }
        let b = footer.blocks[index]
        let bytes = try FileOps.preadExact(file.fd, count: b.totalLength, at: b.offset, path: path)
        let (h, records): (BlockHeader, [StoredRecord]?)
        do { (h, records) = try Block.decode(bytes[...], keep: keep, mayHold: mayHold, dictionary: dictionary) } catch {
            throw AuditError(.corrupt, error.reason, path: path, offset: b.offset)
        }
        guard h.count == b.count, h.firstSeq == b.firstSeq, h.lastSeq == b.lastSeq else {
            throw AuditError(.corrupt, "block header disagrees with the footer", path: path, offset: b.offset)
        }
        return records
    }

    /// Reads the record with sequence number `seq`.
    public func read(seq: UInt64) throws(AuditError) -> StoredRecord {
        guard seq >= footer.firstSeq, seq <= footer.lastSeq else {
            throw AuditError(.notFound, "sequence number \(seq) is not in this segment", path: path)
        }
        let bi = Int(footer.seqMap[Int(seq - footer.firstSeq)])
        for r in try readBlock(bi, keep: { $0 == seq }) { return r }
        throw AuditError(
            .corrupt, "sequence map points sequence number \(seq) to block \(bi), which does not hold it", path: path,
            offset: footer.blocks[bi].offset)
    }

    /// Every record, in sequence order, checking that each sequence number appears exactly once.
    public func readAll() throws(AuditError) -> [StoredRecord] {
        let n = Int(footer.count)
        var slots = [StoredRecord?](repeating: nil, count: n)
        for i in footer.blocks.indices {
            for r in try readBlock(i) {
                let k = Int(r.seq - footer.firstSeq)
                guard k < n, slots[k] == nil, footer.seqMap[k] == UInt32(i) else {
                    throw AuditError(
                        .corrupt, "sequence number \(r.seq) is duplicated or misplaced", path: path,
                        offset: footer.blocks[i].offset)
                }
                slots[k] = r
            }
        }
        var out: [StoredRecord] = []
        out.reserveCapacity(n)
        for (k, s) in slots.enumerated() {
            guard let s else {
                throw AuditError(.corrupt, "sequence number \(footer.firstSeq + UInt64(k)) is missing", path: path)
            }
            out.append(s)
        }
        return out
    }
}
