import AuditBase
import AuditEntries
import Foundation
import LogProofs

#if canImport(Glibc)
import Glibc
#endif

/// Every signed checkpoint ever issued, append-only (format-spec.md §8.2):
///
///     checkpoints.log := record*    record := len:u32 crc32c:u32 size:u64 note[len]
///     checkpoints.idx := (size:u64 offset:u64)*      (one per record, for lookup by size)
///
/// `crc32c` covers `size` and the note. A torn last record (a crash mid-append) is cut at open;
/// damage before the last record is reported, never cut.
public final class CheckpointLog: @unchecked Sendable {
    /// The log file.
    public let logPath: String
    let idxPath: String
    private let log: FileHandleRef
    private let idx: FileHandleRef
    private let lock = NSLock()
    private var logEnd: Int64
    private var count: UInt64
    private var _latest: SignedCheckpoint?
    private var _latestAt: Int64?
    let readOnly: Bool

    /// The log of signed notes in the directory.
    public static let logName = "checkpoints.log"
    /// The index of offsets into it.
    public static let indexName = "checkpoints.idx"

    /// Opens (or creates) the checkpoint log in `directory`.
    public init(directory: String, verifier: LogKeys, readOnly: Bool = false) throws {
        self.readOnly = readOnly
        if !readOnly { try FileOps.makeDirectory(directory) }
        logPath = directory + "/" + Self.logName
        idxPath = directory + "/" + Self.indexName
        log = FileHandleRef(
            fd: readOnly ? try FileOps.open(logPath, O_RDONLY) : try FileOps.openOrCreate(logPath), path: logPath)
        idx = FileHandleRef(
            fd: readOnly ? try FileOps.open(idxPath, O_RDONLY) : try FileOps.openOrCreate(idxPath), path: idxPath)
        let size = try FileOps.size(log.fd, path: logPath)
        var off: Int64 = 0
        var n: UInt64 = 0
        var last: (Int64, Int)?
        while off < size {
            guard let (len, _) = try? Self.readRecord(log, at: off, fileSize: size) else { break }
            last = (off, len)
            off += Int64(ChainFormat.checkpointRecordHeaderSize + len)
            n += 1
        }
        if off < size {
            // Only a torn last record may be cut: a whole, valid record after the damage
            // proves the damaged one had been written (and synced) before it.
            if let later = try Self.validRecord(in: log, after: off, fileSize: size, origin: verifier.name) {
                throw AuditError(
                    .corrupt,
                    "checkpoint record is damaged, and a valid record follows it at offset \(later): this is not a torn last record; nothing was cut. Restore checkpoints.log from a backup, or move it aside to start a new one (every checkpoint in it stays verifiable from an export)",
                    path: logPath, offset: off)
            }
            guard !readOnly else {
                throw AuditError(
                    .corrupt,
                    "checkpoint log ends in a torn record (\(size - off) bytes); auditd cuts it at its next start",
                    path: logPath, offset: off)
            }
            try FileOps.truncate(log.fd, to: off, path: logPath)
            try FileOps.fdatasync(log.fd, path: logPath)
        }
        logEnd = off
        count = n
        if !readOnly {
            // The index is derived: rebuild it whenever it disagrees with the log.
            let idxSize = try FileOps.size(idx.fd, path: idxPath)
            if idxSize != Int64(n) * Int64(ChainFormat.checkpointIndexEntrySize) {
                var w = ByteWriter(capacity: Int(n) * ChainFormat.checkpointIndexEntrySize)
                var o: Int64 = 0
                while o < off {
                    let (len, cp) = try Self.readRecord(log, at: o, fileSize: size)
                    w.write(cp)
                    w.write(UInt64(o))
                    o += Int64(ChainFormat.checkpointRecordHeaderSize + len)
                }
                try FileOps.truncate(idx.fd, to: 0, path: idxPath)
                try FileOps.pwriteAll(idx.fd, w.bytes[...], at: 0, path: idxPath)
                try FileOps.fdatasync(idx.fd, path: idxPath)
            }
        }
        if let (o, _) = last { _latest = try record(at: o, verifier: verifier) }
    }

    /// The offset of the first whole record with a matching checksum that starts after
    /// `offset` and whose note begins with the origin line, looked for at every later byte.
    static func validRecord(in f: FileHandleRef, after offset: Int64, fileSize: Int64, origin: String) throws -> Int64?
    {
        let prefix = Array((origin + "\n").utf8)
        let header = ChainFormat.checkpointRecordHeaderSize
        let chunk = 1 << 20
        var base = offset + 1
        while base + Int64(header + prefix.count) <= fileSize {
            let n = Int(min(Int64(chunk + header + prefix.count), fileSize - base))
            let bytes = try FileOps.preadExact(f.fd, count: n, at: base, path: f.path)
            var i = 0
            while i + header + prefix.count <= bytes.count && i < chunk {
                if bytes[(i + header)..<(i + header + prefix.count)].elementsEqual(prefix),
                    (try? readRecord(f, at: base + Int64(i), fileSize: fileSize)) != nil
                {
                    return base + Int64(i)
                }
                i += 1
            }
            base += Int64(chunk)
        }
        return nil
    }

    static func readRecord(_ f: FileHandleRef, at off: Int64, fileSize: Int64) throws -> (Int, UInt64) {
        guard fileSize - off >= Int64(ChainFormat.checkpointRecordHeaderSize) else {
            throw AuditError(.corrupt, "checkpoint record header cut short", path: f.path, offset: off)
        }
        var r = ByteReader(
            try FileOps.preadExact(f.fd, count: ChainFormat.checkpointRecordHeaderSize, at: off, path: f.path))
        let len = Int(try r.readU32())
        let crc = try r.readU32()
        let size = try r.readU64()
        guard len <= 1 << 16, Int64(len) <= fileSize - off - Int64(ChainFormat.checkpointRecordHeaderSize) else {
            throw AuditError(.corrupt, "checkpoint record cut short", path: f.path, offset: off)
        }
        let note = try FileOps.preadExact(
            f.fd, count: len, at: off + Int64(ChainFormat.checkpointRecordHeaderSize), path: f.path)
        var w = ByteWriter(capacity: 8)
        w.write(size)
        guard CRC32C.matches(CRC32C.checksum(note, crc: CRC32C.checksum(w.bytes)), crc) else {
            throw AuditError(.corrupt, "checkpoint record checksum mismatch", path: f.path, offset: off)
        }
        return (len, size)
    }

    /// The checkpoint recorded at byte `off` of the log, signature checked.
    func record(at off: Int64, verifier: LogKeys) throws -> SignedCheckpoint {
        let size = try FileOps.size(log.fd, path: logPath)
        let (len, cpSize) = try Self.readRecord(log, at: off, fileSize: size)
        let note = String(
            decoding: try FileOps.preadExact(
                log.fd, count: len, at: off + Int64(ChainFormat.checkpointRecordHeaderSize), path: logPath),
            as: UTF8.self)
        let signed: SignedCheckpoint
        do { signed = try SignedCheckpoint(note: note, verifier: verifier) } catch {
            throw AuditError(
                .corrupt, "checkpoint for size \(cpSize): \(error.description)", path: logPath, offset: off)
        }
        guard signed.checkpoint.size == cpSize else {
            throw AuditError(
                .corrupt, "checkpoint record says size \(cpSize) but its note says \(signed.checkpoint.size)",
                path: logPath, offset: off)
        }
        return signed
    }

    /// The newest checkpoint.
    public var latest: SignedCheckpoint? { lock.withLock { _latest } }
    /// When this process stored the newest checkpoint (ms since 1970); nil when it was stored
    /// before the log was opened.
    public var latestStoredAt: Int64? { lock.withLock { _latestAt } }
    /// How many checkpoints are stored.
    public var total: UInt64 { lock.withLock { count } }

    /// Appends a checkpoint durably (write, fdatasync). Sizes never decrease.
    public func append(_ cp: SignedCheckpoint) throws {
        let note = Array(cp.note.utf8)
        var w = ByteWriter(capacity: ChainFormat.checkpointRecordHeaderSize + note.count)
        var body = ByteWriter(capacity: 8)
        body.write(cp.checkpoint.size)
        w.write(UInt32(note.count))
        w.write(CRC32C.checksum(note, crc: CRC32C.checksum(body.bytes)))
        w.write(cp.checkpoint.size)
        w.write(note)
        try lock.withLock {
            if let l = _latest, l.checkpoint.size > cp.checkpoint.size {
                throw AuditError(
                    .invalidArgument,
                    "checkpoint size \(cp.checkpoint.size) is smaller than the latest (\(l.checkpoint.size))",
                    path: logPath)
            }
            try FileOps.pwriteAll(log.fd, w.bytes[...], at: logEnd, path: logPath)
            try FileOps.fdatasync(log.fd, path: logPath)
            var iw = ByteWriter(capacity: ChainFormat.checkpointIndexEntrySize)
            iw.write(cp.checkpoint.size)
            iw.write(UInt64(logEnd))
            try FileOps.pwriteAll(
                idx.fd, iw.bytes[...], at: Int64(count) * Int64(ChainFormat.checkpointIndexEntrySize), path: idxPath)
            logEnd += Int64(w.bytes.count)
            count += 1
            _latest = cp
            _latestAt = Int64(Date().timeIntervalSince1970 * 1000)
        }
    }

    private func indexEntry(_ i: UInt64) throws -> (UInt64, Int64) {
        var r = ByteReader(
            try FileOps.preadExact(
                idx.fd, count: ChainFormat.checkpointIndexEntrySize,
                at: Int64(i) * Int64(ChainFormat.checkpointIndexEntrySize), path: idxPath))
        let size = try r.readU64()
        let offset = try r.readU64()
        guard let o = Int64(exactly: offset) else {
            throw AuditError(
                .corrupt, "checkpoint index entry \(i) points outside the log", path: idxPath,
                offset: Int64(i) * Int64(ChainFormat.checkpointIndexEntrySize))
        }
        return (size, o)
    }

    /// The first checkpoint whose tree size is at least `size` (binary search of the index).
    public func first(atLeast size: UInt64, verifier: LogKeys) throws -> SignedCheckpoint? {
        var lo: UInt64 = 0
        var hi = total
        while lo < hi {
            let mid = (lo + hi) / 2
            if try indexEntry(mid).0 < size { lo = mid + 1 } else { hi = mid }
        }
        guard lo < total else { return nil }
        return try record(at: indexEntry(lo).1, verifier: verifier)
    }

    /// A checkpoint as the verifiers use it: its size, root, and where its record is.
    public typealias Verified = (size: UInt64, root: Hash, offset: Int64)

    /// Every checkpoint from byte `from` on, each signature checked with `verifier`, its
    /// note's size equal to its record's, and sizes never shrinking (from `after`). Throws
    /// the first bad record as corruption of this file at its offset. Returns where it stopped.
    public func verified(from: Int64 = 0, after: UInt64? = nil, verifier: LogKeys) throws -> ([Verified], Int64) {
        var out: [Verified] = []
        var last = after
        let end = try forEach(from: from) { off, size, note in
            let fail = { (m: String) in
                AuditError(.corrupt, "checkpoint (size \(size)): \(m)", path: self.logPath, offset: off)
            }
            let s: SignedCheckpoint
            do { s = try SignedCheckpoint(note: note, verifier: verifier) } catch { throw fail("\(error)") }
            guard s.checkpoint.size == size else {
                throw fail("its record says size \(size) but its note says \(s.checkpoint.size)")
            }
            if let l = last, l > size { throw fail("smaller than the previous checkpoint (\(l))") }
            out.append((size, s.checkpoint.root, off))
            last = size
        }
        return (out, end)
    }

    /// Calls `body` with every record's offset and bytes-as-stored, oldest first, without
    /// checking signatures (the verifier does that and reports where).
    /// Starts at byte `from` and returns where it stopped, so a caller can resume.
    @discardableResult
    public func forEach(from: Int64 = 0, _ body: (Int64, UInt64, String) throws -> Void) throws -> Int64 {
        let size = lock.withLock { readOnly ? Int64(-1) : logEnd }
        let end = size >= 0 ? size : try FileOps.size(log.fd, path: logPath)
        var off = from
        while off < end {
            let (len, cpSize) = try Self.readRecord(log, at: off, fileSize: end)
            try body(
                off, cpSize,
                String(
                    decoding: try FileOps.preadExact(
                        log.fd, count: len, at: off + Int64(ChainFormat.checkpointRecordHeaderSize), path: logPath),
                    as: UTF8.self))
            off += Int64(ChainFormat.checkpointRecordHeaderSize + len)
        }
        return off
    }
}
