import AuditBase

#if canImport(Glibc)
import Glibc
#endif

/// What recovery found in an open segment.
public struct RecoveryReport: Sendable, Equatable, CustomStringConvertible {
    /// The open segment's path.
    public var path: String
    /// Whole, valid blocks kept.
    public var blocksKept: Int
    /// Records in them.
    public var recordsKept: UInt64
    /// Bytes cut from the tail (0 when the tail was clean).
    public var bytesCut: Int64
    /// Offset where the cut began.
    public var cutOffset: Int64
    /// Why the tail was cut, if it was.
    public var reason: String?

    /// One line for the log.
    public var description: String {
        if bytesCut == 0 { return "recovered \(path): \(recordsKept) records in \(blocksKept) blocks, clean tail" }
        return
            "recovered \(path): \(recordsKept) records in \(blocksKept) blocks; cut \(bytesCut) torn bytes at offset \(cutOffset) (\(reason ?? "?"))"
    }
}

extension OpenSegment {
    /// Reopens an open segment after a restart or crash.
    ///
    /// Recovery rule (format-spec.md §2.5): blocks are read in order; the first block that is
    /// cut short, fails its checksum, does not decompress or does not continue the sequence
    /// ends the valid log. If nothing valid follows it, the tail is torn: it is cut off
    /// (ftruncate + fdatasync) and reported. If a valid block follows the bad one, the damage is
    /// not a torn tail but corruption of acknowledged data: nothing is cut and opening fails.
    /// A tail of zero bytes alone is no damage (filled ahead, format-spec.md §2.3): it is kept.
    /// When `allowCut` is false (a rotated segment awaiting its seal) any damage fails.
    static func recover(
        path: String, expectedSegment: UInt64, allowCut: Bool, readOnly: Bool = false
    ) throws(AuditError) -> (OpenSegment, RecoveryReport) {
        let fd = try FileOps.open(path, readOnly ? O_RDONLY : O_RDWR)
        let file = FileHandleRef(fd: fd, path: path)
        let size = try FileOps.size(fd, path: path)
        guard size >= Int64(SegmentFormat.headerSize) else {
            throw AuditError(.corrupt, "open segment is shorter than its header (\(size) bytes)", path: path, offset: 0)
        }
        let header = try SegmentHeader.parse(
            try FileOps.preadExact(fd, count: SegmentFormat.headerSize, at: 0, path: path), path: path)
        guard header.segment == expectedSegment else {
            throw AuditError(
                .corrupt, "header says segment \(header.segment), file name says \(expectedSegment)", path: path,
                offset: 0)
        }
        var blocks: [BlockRef] = []
        var offset = Int64(SegmentFormat.headerSize)
        var nextSeq = header.firstSeq
        var raw = 0
        var failure: String?
        var filledAhead = false
        var again = false
        while offset < size {
            switch probeBlock(file: file, at: offset, fileSize: size, expectedFirst: nextSeq) {
            case .valid(let ref, let rawLen):
                again = false
                blocks.append(ref)
                offset += Int64(ref.length)
                nextSeq += UInt64(ref.count)
                raw += rawLen
                continue
            case .invalid(let why):
                failure = why
                // Zero bytes filled ahead of the blocks (`fillAhead`) are not damage: they are
                // kept, and hold no block to look for.
                filledAhead = try onlyZeros(in: file, from: offset, to: size)
                if !filledAhead, let later = try validBlock(in: file, after: offset, fileSize: size) {
                    // A reader beside the live writer may have read this block's place while it
                    // still held zeros, and a later block after both were written over them
                    // (the file's size does not grow with them): it reads the place again once.
                    if readOnly && !again {
                        again = true
                        continue
                    }
                    throw AuditError(
                        .corrupt,
                        "\(why), and a valid block follows it at offset \(later): this is not a torn tail, refusing to cut acknowledged data",
                        path: path, offset: offset)
                }
            }
            break
        }
        var report = RecoveryReport(
            path: path, blocksKept: blocks.count, recordsKept: nextSeq - header.firstSeq, bytesCut: 0,
            cutOffset: offset, reason: nil)
        if offset < size && !filledAhead {
            guard allowCut else {
                throw AuditError(
                    .corrupt,
                    "rotated segment is damaged (\(failure ?? "trailing bytes")); it was synced before rotation, so this is corruption",
                    path: path, offset: offset)
            }
            if !readOnly {
                try FileOps.truncate(fd, to: offset, path: path)
                try FileOps.fdatasync(fd, path: path)
            }
            report.bytesCut = size - offset
            report.reason = failure ?? "trailing bytes"
        }
        return (
            OpenSegment(
                path: path, file: file, header: header, endOffset: offset, filledEnd: filledAhead ? size : nil,
                blocks: blocks, rawBytes: raw),
            report
        )
    }

    /// Whether bytes `[from, to)` of the file are all zero.
    static func onlyZeros(in file: FileHandleRef, from: Int64, to: Int64) throws(AuditError) -> Bool {
        var at = from
        while at < to {
            let n = Int(min(Int64(1 << 20), to - at))
            let bytes = try FileOps.preadExact(file.fd, count: n, at: at, path: file.path)
            guard bytes.allSatisfy({ $0 == 0 }) else { return false }
            at += Int64(n)
        }
        return true
    }

    private enum Probe {
        case valid(BlockRef, Int)
        case invalid(String)
    }

    /// The offset of the first whole, valid block that starts after `offset`, found by looking
    /// for the block magic at every later byte. Whatever part of a header is damaged (its
    /// magic, its length, its checksum), a valid block behind it proves that the damaged one
    /// was synced before it, so it is corruption, not a torn tail: blocks are written one
    /// group commit at a time, each only after the previous one's fdatasync.
    static func validBlock(in file: FileHandleRef, after offset: Int64, fileSize: Int64) throws(AuditError) -> Int64? {
        let chunk = 1 << 20
        let magic = SegmentFormat.blockMagic
        var base = offset + 1
        while base + Int64(SegmentFormat.blockHeaderSize) <= fileSize {
            let n = Int(min(Int64(chunk + magic.count - 1), fileSize - base))
            let bytes = try FileOps.preadExact(file.fd, count: n, at: base, path: file.path)
            var i = 0
            while i + magic.count <= bytes.count {
                if bytes[i] == magic[0], bytes[i + 1] == magic[1], bytes[i + 2] == magic[2], bytes[i + 3] == magic[3],
                    case .valid = probeBlock(file: file, at: base + Int64(i), fileSize: fileSize, expectedFirst: nil)
                {
                    return base + Int64(i)
                }
                i += 1
            }
            base += Int64(chunk)
        }
        return nil
    }

    private static func probeBlock(
        file: FileHandleRef, at offset: Int64, fileSize: Int64, expectedFirst: UInt64?
    ) -> Probe {
        let avail = fileSize - offset
        guard avail >= Int64(SegmentFormat.blockHeaderSize),
            let hb = try? FileOps.preadExact(file.fd, count: SegmentFormat.blockHeaderSize, at: offset, path: file.path)
        else { return .invalid("partial block header") }
        let h: BlockHeader
        do { h = try BlockHeader.parse(hb[...]) } catch { return .invalid(error.reason) }
        guard Int64(h.totalLength) <= avail,
            let bytes = try? FileOps.preadExact(file.fd, count: h.totalLength, at: offset, path: file.path)
        else {
            return .invalid("partial block (header declares \(h.totalLength) bytes, \(avail) remain)")
        }
        let records: [StoredRecord]
        do { records = try Block.decode(bytes[...]).1 } catch { return .invalid(error.reason) }
        if let expectedFirst {
            guard h.firstSeq == expectedFirst, h.lastSeq - h.firstSeq == UInt64(h.count) - 1,
                records.enumerated().allSatisfy({ $0.element.seq == expectedFirst + UInt64($0.offset) })
            else {
                return .invalid("block does not continue the sequence (expected \(expectedFirst), found \(h.firstSeq))")
            }
        }
        return .valid(
            BlockRef(offset: offset, length: h.totalLength, firstSeq: h.firstSeq, count: Int(h.count)), Int(h.rawLength)
        )
    }
}
