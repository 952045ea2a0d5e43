import AuditBase
import Foundation

/// A token kept: the entry that records it, the checkpoint it stamps, the authority that made
/// it, its time and its bytes.
public struct StampedCheckpoint: Sendable, Equatable {
    /// The seq of the `_operator` entry that records the token.
    public var entry: UInt64
    /// The stamped checkpoint's size and root hash.
    public var size: UInt64
    public var root: Hash
    /// The authority's URL.
    public var authority: String
    /// The token's genTime, ms since 1970.
    public var time: Int64
    /// The token (DER).
    public var token: [UInt8]

    public init(entry: UInt64, size: UInt64, root: Hash, authority: String, time: Int64, token: [UInt8]) {
        self.entry = entry
        self.size = size
        self.root = root
        self.authority = authority
        self.time = time
        self.token = token
    }

    /// `entry:u64 size:u64 root[32] time:i64 urlLen:u16 url tokenLen:u32 token`.
    var body: [UInt8] {
        var w = ByteWriter(capacity: 62 + authority.utf8.count + token.count)
        w.write(entry)
        w.write(size)
        w.write(root.bytes)
        w.write(UInt64(bitPattern: time))
        w.write(UInt16(truncatingIfNeeded: authority.utf8.count))
        w.write(Array(authority.utf8))
        w.write(UInt32(truncatingIfNeeded: token.count))
        w.write(token)
        return w.bytes
    }

    init?(body: ArraySlice<UInt8>) {
        var r = ByteReader(Array(body))
        guard let entry = try? r.readU64(), let size = try? r.readU64(),
            let root = (try? r.read(count: 32)).flatMap({ Hash(bytes: Array($0)) }),
            let time = try? r.readU64(), let ul = try? Int(r.readU16()), let url = try? r.read(count: ul),
            let tl = try? Int(r.readU32()), let token = try? r.read(count: tl), r.isAtEnd
        else { return nil }
        self.init(
            entry: entry, size: size, root: root, authority: String(decoding: url, as: UTF8.self),
            time: Int64(bitPattern: time),
            token: Array(token))
    }
}

/// `checkpoints/timestamps` (format-spec.md §8.7): the tokens the log's entries record, in the
/// order of those entries, framed records (`FramedRecords`), so that an export finds the
/// tokens over its range without reading the log (or the archive) for them. It is derived
/// from the entries (and can be made again from them); a token proves itself (its
/// authority's signature and a consistency proof), so this file can only fail to offer one,
/// never make a false one pass.
public final class TimeStampJournal: @unchecked Sendable {
    /// The largest token kept.
    public static let maxToken = 32 << 10
    let path: String
    private let lock = NSLock()
    private let fd: Int32
    private var end: Int64
    /// (size, offset) of each record, in the order written (sizes never decrease).
    private var index: [(size: UInt64, offset: Int64)] = []
    /// The seq of the last record's entry.
    private var last: UInt64?

    /// Opens (or creates) the file at `path`; a torn tail is cut.
    public init(path: String) throws(AuditError) {
        self.path = path
        fd = try FileOps.openOrCreate(path)
        let size = try FileOps.size(fd, path: path)
        var at: Int64 = 0
        while size - at >= 8 {
            let head = try FileOps.preadExact(fd, count: 8, at: at, path: path)
            var r = ByteReader(head)
            guard let len = try? Int(r.readU32()), len <= Self.maxToken + 4096, size - at - 8 >= Int64(len) else {
                break
            }
            let rec = try FileOps.preadExact(fd, count: 8 + len, at: at, path: path)
            let records = FramedRecords.records(rec, maxBody: len).records
            guard records.count == 1,
                let s = StampedCheckpoint(body: records[0].body)
            else { break }
            index.append((s.size, at))
            last = s.entry
            at += Int64(8 + len)
        }
        if at < size {
            try FileOps.truncate(fd, to: at, path: path)
            try FileOps.fdatasync(fd, path: path)
        }
        end = at
    }

    deinit { close(fd) }

    /// How many tokens it holds.
    public var count: Int { lock.withLock { index.count } }

    /// The seq of the entry of the last token it holds.
    public var lastEntry: UInt64? { lock.withLock { last } }

    /// Appends `s`, durably, unless it holds the token of that entry or a later one already
    /// (two catch-ups at once add each token once).
    public func append(_ s: StampedCheckpoint) throws(AuditError) {
        guard s.token.count <= Self.maxToken, s.authority.utf8.count <= 2048 else {
            throw AuditError(.invalidArgument, "a time-stamp token over \(Self.maxToken) bytes is not kept")
        }
        var w = ByteWriter(capacity: 64 + s.token.count)
        FramedRecords.frame(s.body, into: &w)
        lock.lock()
        defer { lock.unlock() }
        if let last, s.entry <= last { return }
        try FileOps.pwriteAll(fd, w.bytes[...], at: end, path: path)
        try FileOps.fdatasync(fd, path: path)
        index.append((s.size, end))
        last = s.entry
        end += Int64(w.bytes.count)
    }

    /// The tokens over checkpoints of size in `sizes`, oldest first; at most `limit`, spread
    /// evenly over them with the last always kept (it bounds the newest entries).
    public func stamps(sizes: ClosedRange<UInt64>, limit: Int) throws(AuditError) -> [StampedCheckpoint] {
        let picked: [Int64] = lock.withLock {
            let inRange = index.filter { sizes.contains($0.size) }.map(\.offset)
            guard inRange.count > limit, limit > 0 else { return inRange }
            let step = Double(inRange.count - 1) / Double(max(1, limit - 1))
            return (0..<limit).map { inRange[min(inRange.count - 1, Int((Double($0) * step).rounded()))] }
        }
        var out: [StampedCheckpoint] = []
        for offset in picked {
            let head = try FileOps.preadExact(fd, count: 8, at: offset, path: path)
            var r = ByteReader(head)
            guard let len = try? Int(r.readU32()) else { continue }
            let rec = try FileOps.preadExact(fd, count: 8 + len, at: offset, path: path)
            if let b = FramedRecords.records(rec, maxBody: len).records.first, let s = StampedCheckpoint(body: b.body) {
                out.append(s)
            }
        }
        return out
    }
}
