import AuditBase

#if canImport(Glibc)
import Glibc
#endif

/// Where one block of an open segment lies.
public struct BlockRef: Sendable, Equatable {
    /// Offset of the block header in the file.
    public var offset: Int64
    /// Header plus payload length.
    public var length: Int
    /// First sequence number in the block.
    public var firstSeq: UInt64
    /// Number of records (sequence numbers are contiguous in an open segment).
    public var count: Int
}

/// The segment being appended to: a header, then one block per group commit, records in
/// sequence order (format-spec.md §2.3). Only the commit thread mutates it; readers take a
/// snapshot of `blocks` from the store under its lock.
final class OpenSegment: @unchecked Sendable {
    let path: String
    let file: FileHandleRef
    let header: SegmentHeader
    private(set) var endOffset: Int64
    private(set) var blocks: [BlockRef]
    private(set) var nextSeq: UInt64
    private(set) var rawBytes: Int = 0
    let createdAt: ContinuousClock.Instant

    var segment: UInt64 { header.segment }
    var firstSeq: UInt64 { header.firstSeq }
    var recordCount: UInt64 { nextSeq - header.firstSeq }

    private init(
        path: String, file: FileHandleRef, header: SegmentHeader, endOffset: Int64, blocks: [BlockRef], rawBytes: Int
    ) {
        self.path = path
        self.file = file
        self.header = header
        self.endOffset = endOffset
        self.blocks = blocks
        self.rawBytes = rawBytes
        self.nextSeq = header.firstSeq + UInt64(blocks.reduce(0) { $0 + $1.count })
        self.createdAt = .now
    }

    /// Creates a new, empty open segment.
    ///
    /// 1. create `N.open.tmp` exclusively; 2. write the header; 3. fsync it; 4. rename it to
    /// `N.open`; 5. fsync the directory. A crash at any step leaves either no `N.open` or one
    /// with a whole header: recovery never meets a segment without one (a stray `.open.tmp` is
    /// removed). The descriptor stays valid across the rename.
    static func create(directory: String, segment: UInt64, firstSeq: UInt64) throws(AuditError) -> OpenSegment {
        let path = directory + "/" + SegmentNames.open(segment)
        let tmp = path + ".tmp"
        try FileOps.unlink(tmp)
        let fd = try FileOps.open(tmp, O_RDWR | O_CREAT | O_EXCL, mode: 0o640)
        let file = FileHandleRef(fd: fd, path: path)
        let header = SegmentHeader(flags: SegmentFormat.flagOpen, segment: segment, firstSeq: firstSeq)
        try FileOps.pwriteAll(fd, header.encoded()[...], at: 0, path: tmp)
        try FileOps.fsync(fd, path: tmp)
        try FileOps.rename(tmp, path)
        try FileOps.fsyncDirectory(directory)
        return OpenSegment(
            path: path, file: file, header: header, endOffset: Int64(SegmentFormat.headerSize), blocks: [], rawBytes: 0)
    }

    /// An empty stand-in for a missing open segment in a read-only store; never written.
    static func placeholder(directory: String, segment: UInt64, firstSeq: UInt64) -> OpenSegment {
        OpenSegment(
            path: directory + "/" + SegmentNames.open(segment),
            file: FileHandleRef(fd: -1, path: directory + "/" + SegmentNames.open(segment)),
            header: SegmentHeader(flags: SegmentFormat.flagOpen, segment: segment, firstSeq: firstSeq),
            endOffset: Int64(SegmentFormat.headerSize), blocks: [], rawBytes: 0)
    }

    /// Appends one block holding `payloads` at the next sequence numbers. Not durable until `sync`.
    func append(_ records: [StoreRecord], level: Int32) throws(AuditError) -> UInt64 {
        let first = nextSeq
        var seq = first
        let stored = records.map { r -> StoredRecord in
            defer { seq += 1 }
            return StoredRecord(seq: seq, key: r.key, payload: r.payload)
        }
        let bytes: [UInt8]
        do { bytes = try Block.encode(stored, level: level) } catch {
            throw AuditError(.io, "compression failed: \(error.message)", path: path, offset: endOffset)
        }
        do {
            try FileOps.pwriteAll(file.fd, bytes[...], at: endOffset, path: path)
        } catch {
            // Leave no partial block behind a failed write (a full disk, say): the next
            // append starts cleanly at the same offset, and recovery sees no garbage.
            try? FileOps.truncate(file.fd, to: endOffset, path: path)
            throw error
        }
        blocks.append(BlockRef(offset: endOffset, length: bytes.count, firstSeq: first, count: records.count))
        endOffset += Int64(bytes.count)
        nextSeq += UInt64(records.count)
        rawBytes += records.reduce(0) { $0 + $1.payload.count }
        return first
    }

    /// Makes every appended block durable.
    func sync() throws(AuditError) {
        try FileOps.fdatasync(file.fd, path: path)
    }

    /// Reads and checks one block.
    static func readBlock(
        _ ref: BlockRef, file: FileHandleRef, keep: ((UInt64) -> Bool)? = nil
    ) throws(AuditError) -> [StoredRecord] {
        try readBlock(ref, file: file, keep: keep, mayHold: nil) ?? []
    }

    /// `readBlock(_:file:keep:)`, or nil when `mayHold` says the block holds nothing wanted.
    static func readBlock(
        _ ref: BlockRef, file: FileHandleRef, keep: ((UInt64) -> Bool)?, mayHold: BlockFilter?
    ) throws(AuditError) -> [StoredRecord]? {
        let bytes = try FileOps.preadExact(file.fd, count: ref.length, at: ref.offset, path: file.path)
        do {
            return try Block.decode(bytes[...], keep: keep, mayHold: mayHold).1
        } catch {
            throw AuditError(.corrupt, error.reason, path: file.path, offset: ref.offset)
        }
    }
}

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
        while offset < size {
            switch probeBlock(file: file, at: offset, fileSize: size, expectedFirst: nextSeq) {
            case .valid(let ref, let rawLen):
                blocks.append(ref)
                offset += Int64(ref.length)
                nextSeq += UInt64(ref.count)
                raw += rawLen
                continue
            case .invalid(let why):
                failure = why
                if let later = try validBlock(in: file, after: offset, fileSize: size) {
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
        if offset < size {
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
            OpenSegment(path: path, file: file, header: header, endOffset: offset, blocks: blocks, rawBytes: raw),
            report
        )
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

/// File names of segments: twenty decimal digits of the segment number.
public enum SegmentNames {
    /// `00000000000000000007.open`
    public static func open(_ n: UInt64) -> String { digits(n) + ".open" }
    /// `00000000000000000007.seg`
    public static func sealed(_ n: UInt64) -> String { digits(n) + ".seg" }
    /// `00000000000000000007.seg.tmp`
    public static func sealing(_ n: UInt64) -> String { digits(n) + ".seg.tmp" }

    /// `00000000000000000007`: the number part every file of segment 7 shares.
    public static func digits(_ n: UInt64) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 20 - s.count)) + s
    }

    /// The segment number and suffix of a segment file name, or nil.
    public static func parse(_ name: String) -> (UInt64, String)? {
        guard let dot = name.firstIndex(of: "."), name.distance(from: name.startIndex, to: dot) == 20,
            let n = UInt64(name[..<dot]), n < SegmentFormat.maxSeq
        else { return nil }
        return (n, String(name[name.index(after: dot)...]))
    }
}
