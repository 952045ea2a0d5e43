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
    /// The file's size: `endOffset` plus the zero bytes filled ahead of it (`fillAhead`).
    private(set) var filledEnd: Int64
    /// A fill failed (a full disk, say): appends extend the file again, as before any fill.
    private var fillFailed = false
    private(set) var blocks: [BlockRef]
    private(set) var nextSeq: UInt64
    private(set) var rawBytes: Int = 0
    let createdAt: ContinuousClock.Instant

    var segment: UInt64 { header.segment }
    var firstSeq: UInt64 { header.firstSeq }
    var recordCount: UInt64 { nextSeq - header.firstSeq }

    /// An open segment as `create` or `recover` found it.
    init(
        path: String, file: FileHandleRef, header: SegmentHeader, endOffset: Int64, filledEnd: Int64? = nil,
        blocks: [BlockRef], rawBytes: Int
    ) {
        self.path = path
        self.file = file
        self.header = header
        self.endOffset = endOffset
        self.filledEnd = max(endOffset, filledEnd ?? endOffset)
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

    /// Appends one block holding `records`, which must be at the next sequence numbers, in
    /// order. Not durable until `sync`.
    func append(_ records: BlockRecords, level: Int32, storeBelow: Int = 0) throws(AuditError) -> UInt64 {
        let first = nextSeq
        guard records.firstSeq == first, records.consecutive, records.flaw == nil else {
            throw AuditError(
                .invalidArgument,
                "a block of \(records.count) records at \(records.firstSeq) is not the next \(records.count) "
                    + "from \(first)\(records.flaw.map { ": \($0)" } ?? "")",
                path: path)
        }
        let bytes: [UInt8]
        do { bytes = try Block.encode(records, level: level, storeBelow: storeBelow) } catch {
            throw AuditError(.io, "compression failed: \(error.message)", path: path, offset: endOffset)
        }
        do {
            try FileOps.pwriteAll(file.fd, bytes[...], at: endOffset, path: path)
        } catch {
            // Leave no partial block behind a failed write (a full disk, say): the next
            // append starts cleanly at the same offset, and recovery sees no garbage. The
            // zeros filled ahead go too; the next fill starts from here.
            try? FileOps.truncate(file.fd, to: endOffset, path: path)
            filledEnd = endOffset
            throw error
        }
        blocks.append(BlockRef(offset: endOffset, length: bytes.count, firstSeq: first, count: records.count))
        endOffset += Int64(bytes.count)
        filledEnd = max(filledEnd, endOffset)
        nextSeq += UInt64(records.count)
        rawBytes += records.payloadBytes
        return first
    }

    /// Makes every appended block durable.
    func sync() throws(AuditError) {
        try FileOps.fdatasync(file.fd, path: path)
    }

    /// Fills the file with zero bytes, durably, to `ahead` bytes past the last block once
    /// fewer than half of that remain (format-spec.md §2.3). A block written over them then
    /// leaves the file's size as it was, and its fdatasync writes the block alone: on ext4 an
    /// append's fdatasync also writes the inode, a second device round trip before the ack.
    /// Off the ack path (after the acks); a failure only ends the filling in this segment.
    func fillAhead(_ ahead: Int) {
        guard ahead > 0, !fillFailed, filledEnd - endOffset < Int64(ahead / 2) else { return }
        let target = endOffset + Int64(ahead)
        let chunk = [UInt8](repeating: 0, count: 256 << 10)
        do {
            var at = filledEnd
            while at < target {
                let n = Int(min(Int64(chunk.count), target - at))
                try FileOps.pwriteAll(file.fd, chunk[..<n], at: at, path: path)
                at += Int64(n)
            }
            try FileOps.fdatasync(file.fd, path: path)
            filledEnd = target
        } catch {
            // Zeros past `filledEnd` are harmless (recovery keeps a zero tail); appends go on.
            fillFailed = true
        }
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
