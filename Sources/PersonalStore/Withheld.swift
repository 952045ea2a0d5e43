import AuditBase
import AuditEntries
import Foundation

/// The entries an erasure could not erase, only withhold (format-spec.md §5.4.3): entries
/// written in the clear that name the subject. Readers stop showing them; their links and
/// hashes are still shown, so every chain and proof holds.
///
/// `DATA/personal/withheld`: records `recordSeq:u64 seq:u64*` (the erasure record's seq, then
/// up to 8,000 withheld seqs in increasing order); `DATA/personal/withholding`: the list of
/// the erasure in progress, `seq:u64*` (little-endian), written before its record.
public final class WithheldEntries: @unchecked Sendable {
    /// Seqs one journal record holds at most (its body stays under the 64 KiB bound).
    static let perRecord = 8_000
    /// Withheld entries a store holds at most (memory is bounded: 16 bytes each).
    public static let maxEntries = 16_000_000

    private let lock = NSLock()
    private let file: FileHandleRef
    private var end: Int64
    private var byEntry: [UInt64: UInt64] = [:]
    private var lists: [UInt64: [UInt64]] = [:]
    let directory: String
    let readOnly: Bool

    init(directory: String, readOnly: Bool) throws {
        self.directory = directory
        self.readOnly = readOnly
        (file, end) = try PersonalStore.openJournal(directory + "/withheld", readOnly: readOnly)
        for (_, body) in try PersonalStore.read(file, end: end) {
            guard let (record, seqs) = Self.decode(body) else { continue }
            add(record, seqs)
        }
    }

    private func add(_ record: UInt64, _ seqs: [UInt64]) {
        var list = lists[record] ?? []
        var ordered = true
        for s in seqs where byEntry[s] == nil {
            byEntry[s] = record
            if let last = list.last, s <= last { ordered = false }
            list.append(s)
        }
        // A record's chunks are written in increasing order: sorting is for a journal that is not.
        lists[record] = ordered ? list : list.sorted()
    }

    static func decode(_ body: ArraySlice<UInt8>) -> (UInt64, [UInt64])? {
        guard body.count >= 8, body.count % 8 == 0 else { return nil }
        var r = ByteReader(Array(body))
        guard let record = try? r.readU64() else { return nil }
        var seqs: [UInt64] = []
        while !r.isAtEnd {
            guard let s = try? r.readU64() else { return nil }
            seqs.append(s)
        }
        return (record, seqs)
    }

    /// The seq of the erasure record that withholds entry `seq`, if one does.
    public func record(withholding seq: UInt64) -> UInt64? { lock.withLock { byEntry[seq] } }

    /// Whether any entry is withheld (readers skip the lookups when none is).
    public var isEmpty: Bool { lock.withLock { byEntry.isEmpty } }

    /// The entries erasure record `record` withholds, in increasing order.
    public func entries(of record: UInt64) -> [UInt64] { lock.withLock { lists[record] ?? [] } }

    /// The erasure records that withhold entries.
    public var records: [UInt64] { lock.withLock { lists.keys.sorted() } }

    /// How many entries are withheld.
    public var count: Int { lock.withLock { byEntry.count } }

    /// Journals that record `record` withholds `seqs`, durably.
    public func record(_ record: UInt64, withholds seqs: [UInt64]) throws {
        guard !readOnly else { throw AuditError(.invalidArgument, "\(directory) is open read-only") }
        try lock.withLock {
            guard byEntry.count + seqs.count <= Self.maxEntries else {
                throw AuditError(
                    .invalidArgument,
                    "withholding \(seqs.count) more entries would pass the store's bound of \(Self.maxEntries)")
            }
            var w = ByteWriter(capacity: seqs.count * 8 + 64)
            var i = 0
            repeat {
                var body = ByteWriter(capacity: 8 + min(Self.perRecord, seqs.count - i) * 8)
                body.write(record)
                for s in seqs[i..<min(seqs.count, i + Self.perRecord)] { body.write(s) }
                Journal.frame(body.bytes, into: &w)
                i += Self.perRecord
            } while i < seqs.count
            try FileOps.pwriteAll(file.fd, w.bytes[...], at: end, path: file.path)
            try FileOps.fdatasync(file.fd, path: file.path)
            end += Int64(w.bytes.count)
            add(record, seqs)
        }
    }

    // MARK: The erasure in progress

    public var pendingPath: String { directory + "/withholding" }

    /// Writes the list of the erasure about to be recorded (fsync'd, replacing any older one).
    public func writePending(_ seqs: [UInt64]) throws {
        var w = ByteWriter(capacity: seqs.count * 8)
        for s in seqs { w.write(s) }
        try FileOps.replaceFile(pendingPath, contents: w.bytes, mode: 0o600)
    }

    /// The list of the erasure in progress (empty when there is none).
    public func readPending() throws -> [UInt64] {
        guard let bytes = try FileOps.readFile(pendingPath, limit: Self.maxEntries * 8) else { return [] }
        guard bytes.count % 8 == 0 else {
            throw AuditError(
                .corrupt,
                "\(pendingPath) is torn (\(bytes.count) bytes); it is written before its record, so run the erasure again"
            )
        }
        var r = ByteReader(bytes)
        var out: [UInt64] = []
        out.reserveCapacity(bytes.count / 8)
        while !r.isAtEnd { out.append(try r.readU64()) }
        return out
    }

    public func removePending() throws {
        if FileOps.exists(pendingPath) { try FileOps.unlink(pendingPath) }
    }
}
