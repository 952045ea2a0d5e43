import AuditBase
import Foundation

/// One `values/<first seq>.values` file: rows in seq order, and a sample of (seq, offset)
/// every 64 rows so one entry's rows are found with one short read. The last file is the one
/// appended to; the others are sampled on their first read.
final class ValuesFile: @unchecked Sendable {
    let path: String
    let firstSeq: UInt64
    private let lock = NSLock()
    private(set) var handle: FileHandleRef?
    private var reader: FileHandleRef?
    /// Where the valid rows end.
    private(set) var end: Int64 = 0
    private var samples: [(seq: UInt64, offset: Int64)]?
    private var rowsSinceSample = 0

    init(path: String, firstSeq: UInt64) {
        self.path = path
        self.firstSeq = firstSeq
    }

    /// Opens for appending: the torn tail cut, the sample built.
    func openForAppend() throws {
        let f = FileHandleRef(fd: try FileOps.openOrCreate(path, mode: 0o600), path: path)
        let size = try FileOps.size(f.fd, path: path)
        let bytes = try FileOps.preadExact(f.fd, count: Int(size), at: 0, path: path)
        let (records, valid) = Journal.records(bytes)
        if Int64(valid) < size {
            try FileOps.truncate(f.fd, to: Int64(valid), path: path)
            try FileOps.fsync(f.fd, path: path)
        }
        lock.withLock {
            handle = f
            end = Int64(valid)
            samples = Self.sample(records)
            rowsSinceSample = records.count % PersonalStore.sampleEvery
        }
    }

    func closeForAppend() { lock.withLock { handle = nil } }

    private static func sample(_ records: [(offset: Int, body: ArraySlice<UInt8>)]) -> [(UInt64, Int64)] {
        stride(from: 0, to: records.count, by: PersonalStore.sampleEvery).compactMap { i in
            ValueRow.seq(records[i].body).map { ($0, Int64(records[i].offset)) }
        }
    }

    /// Appends framed rows (not synced); `rows` says where each begins in `bytes`, and its seq.
    func append(_ bytes: [UInt8], rows: [(seq: UInt64, offset: Int)]) throws {
        guard let h = lock.withLock({ handle }) else {
            throw AuditError("\(path) is not open for appending")
        }
        let at = lock.withLock { end }
        try FileOps.pwriteAll(h.fd, bytes[...], at: at, path: path)
        lock.withLock {
            for r in rows {
                if rowsSinceSample == 0 { samples?.append((r.seq, at + Int64(r.offset))) }
                rowsSinceSample = (rowsSinceSample + 1) % PersonalStore.sampleEvery
            }
            end = at + Int64(bytes.count)
        }
    }

    /// Cuts rows at or above `seq`.
    func cut(from seq: UInt64) throws {
        let f = FileHandleRef(fd: try FileOps.open(path, O_RDWR | O_CLOEXEC), path: path)
        let size = try FileOps.size(f.fd, path: path)
        let bytes = try FileOps.preadExact(f.fd, count: Int(size), at: 0, path: path)
        let (records, valid) = Journal.records(bytes)
        let at = records.first { (ValueRow.seq($0.body) ?? 0) >= seq }.map { Int64($0.offset) } ?? Int64(valid)
        if at < size {
            try FileOps.truncate(f.fd, to: at, path: path)
            try FileOps.fsync(f.fd, path: path)
        }
        lock.withLock { samples = nil }
    }

    /// Rewrites the file without the rows of entries in `range` (written aside, synced,
    /// renamed over it, the directory synced); reopened for appending if it was. Returns
    /// whether any row is left.
    func rewrite(without range: Range<UInt64>) throws -> Bool {
        guard let bytes = try FileOps.readFile(path, limit: Int(PersonalStore.maxFile) * 2) else { return false }
        var kept: [UInt8] = []
        kept.reserveCapacity(bytes.count)
        var left = false
        for r in Journal.records(bytes).records {
            guard let seq = ValueRow.seq(r.body), !range.contains(seq) else { continue }
            kept.append(contentsOf: bytes[r.offset..<(r.body.endIndex)])
            left = true
        }
        let appending = lock.withLock { handle != nil }
        try FileOps.replaceFile(path, contents: kept, mode: 0o600)
        lock.withLock {
            samples = nil
            reader = nil
            handle = nil
            end = Int64(kept.count)
        }
        if appending { try openForAppend() }
        return left
    }

    private func readHandle() throws -> FileHandleRef {
        if let r = lock.withLock({ reader }) { return r }
        let r = FileHandleRef(fd: try FileOps.open(path, O_RDONLY | O_CLOEXEC), path: path)
        lock.withLock { reader = reader ?? r }
        return r
    }

    /// Every row of the file.
    func allRows() throws -> [ValueRow] {
        let r = try readHandle()
        let size = try FileOps.size(r.fd, path: path)
        let limit = lock.withLock { handle != nil ? end : size }
        let bytes = try FileOps.preadExact(r.fd, count: Int(min(size, limit)), at: 0, path: path)
        return Journal.records(bytes).records.compactMap { ValueRow.decode($0.body) }
    }

    /// The rows of entry `seq`.
    func rows(seq: UInt64) throws -> [ValueRow] {
        let r = try readHandle()
        var s = lock.withLock { samples }
        if s == nil {
            let size = try FileOps.size(r.fd, path: path)
            let bytes = try FileOps.preadExact(r.fd, count: Int(size), at: 0, path: path)
            let (records, valid) = Journal.records(bytes)
            s = Self.sample(records)
            lock.withLock {
                if samples == nil {
                    samples = s
                    if handle == nil { end = Int64(valid) }
                }
            }
        }
        let sampled = s ?? []
        let limit = lock.withLock { end }
        // The last sample before `seq`: the rows of `seq` start after it.
        var lo = 0
        var hi = sampled.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sampled[mid].seq < seq { lo = mid + 1 } else { hi = mid }
        }
        var at = lo == 0 ? 0 : sampled[lo - 1].offset
        var out: [ValueRow] = []
        var window = 8 << 10
        while at < limit {
            let n = Int(min(Int64(window), limit - at))
            let bytes = try FileOps.preadExact(r.fd, count: n, at: at, path: path)
            let (records, used) = Journal.records(bytes)
            for rec in records {
                guard let rs = ValueRow.seq(rec.body) else { continue }
                if rs > seq { return out }
                if rs == seq, let row = ValueRow.decode(rec.body) { out.append(row) }
            }
            guard used > 0 else {
                // A row longer than the window: read more at once.
                guard window < Journal.maxBody * 2 else { break }
                window *= 2
                continue
            }
            at += Int64(used)
        }
        return out
    }
}
