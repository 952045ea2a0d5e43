import AuditBase
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Append-only storage of opaque records by sequence number, in segment files.
///
/// Writes (`write`, `sync`, `rotate…`) must come from one thread at a time (the commit thread
/// of the ledger's group commit); reads may come from any thread; `sealRotated` from one sealer.
/// Only records made durable by `sync` are readable.
public final class SegmentStore: @unchecked Sendable {
    /// The directory holding the segment files.
    public let directory: String
    /// The options in force.
    public let options: SegmentStoreOptions
    /// The dictionary the last seal trained, offered to the next.
    let dictionaries = SealDictionaries()
    /// What recovery did to the open segment.
    public let recovery: RecoveryReport
    /// True when opened only for reading (verification): nothing is created, cut or removed.
    public let readOnly: Bool
    /// Called after a segment is sealed and before its open file is removed. Set before use.
    public var onSealed: (@Sendable (SegmentInfo) throws -> Void)?

    let lock = NSLock()
    let sealMutex = NSLock()
    /// Broadcast when a seal leaves the rotated list (`waitForSealer()`).
    let sealProgress = NSCondition()
    var sealed: [SegmentInfo]
    var rotated: [(OpenSegment, [BlockRef])]
    /// The last few rotated segments sealed, their open files still readable (`unsealed()`).
    var recentlySealed: [(OpenSegment, [BlockRef])] = []
    static let recentlySealedKept = 4
    var open: OpenSegment
    var openReadable: [BlockRef] = []
    private var unsynced: [BlockRef] = []
    var durableEnd: UInt64
    var cache: [(UInt64, SealedSegment)] = []
    private static let cacheSize = 64

    /// Opens (or creates) the store in `directory`, recovering the open segment. `retired`
    /// names the segments whose records left the directory (a sealed file present for one of
    /// them wins: its move out did not finish, or it came back). The segments, retired or not,
    /// must continue one another from segment 0 at sequence 0: a caller that forgets a retired
    /// one is told a segment is missing, never served a log that starts later.
    ///
    /// Recovery (format-spec.md §2.5): 1. remove `*.seg.tmp` and `*.open.tmp` (a seal or a
    /// segment creation that never reached its rename); 2. remove an open file whose sealed file exists (the seal committed);
    /// 3. reopen older open files strictly (they were synced before rotation); 4. reopen the
    /// newest open file, cutting a torn tail; 5. check the segments continue one another.
    /// Sealed files are only read, never written.
    public init(
        directory: String, options: SegmentStoreOptions = .init(), readOnly: Bool = false,
        retired: [RetiredSegment] = []
    ) throws(AuditError) {
        self.directory = directory
        self.options = options
        self.readOnly = readOnly
        if !readOnly { try FileOps.makeDirectory(directory) }
        // A reader lists the directory while the writer seals and retires segments: a file
        // it listed may be gone (renamed or unlinked) by the time it opens it, and a listing is
        // not a snapshot (a segment sealed while it ran may show neither of its two names).
        // Then it lists again; what is still wrong after a few tries is reported.
        var attempts = 0
        var names = try FileOps.list(directory)
        var loaded: Loaded
        while true {
            do {
                loaded = try Self.load(directory: directory, names: names, readOnly: readOnly, retired: retired)
                break
            } catch {
                // Only a listing the directory changed since is tried again: when it did not,
                // the error is the directory's.
                attempts += 1
                guard readOnly, attempts < 8 else { throw error }
                let again = try FileOps.list(directory)
                guard Set(again) != Set(names) else { throw error }
                names = again
            }
        }
        let (infos, rot, report, openSeg) = (loaded.infos, loaded.rotated, loaded.report, loaded.open)
        let (expectedSeq, expectedNum) = (loaded.endSeq, loaded.nextSegment)
        if let openSeg {
            open = openSeg
        } else if readOnly {
            open = OpenSegment.placeholder(directory: directory, segment: expectedNum ?? 0, firstSeq: expectedSeq)
        } else {
            open = try OpenSegment.create(directory: directory, segment: expectedNum ?? 0, firstSeq: expectedSeq)
        }
        recovery =
            report
            ?? RecoveryReport(
                path: open.path, blocksKept: 0, recordsKept: 0, bytesCut: 0, cutOffset: Int64(SegmentFormat.headerSize),
                reason: nil)
        sealed = infos
        rotated = rot
        openReadable = open.blocks
        durableEnd = open.nextSeq
    }

    // MARK: Writing (one thread)

    /// The sequence number the next record will get.
    public var nextSeq: UInt64 { open.nextSeq }
    /// The open segment's first sequence number (commit thread).
    public var openFirstSeq: UInt64 { open.firstSeq }

    /// The number of the segment being appended to (any thread).
    public var openSegment: UInt64 { lock.withLock { open.segment } }

    /// Appends `records` as one block at the next sequence numbers and returns the first.
    /// Nothing is durable, or readable, until `sync()` returns.
    @discardableResult
    public func write(_ records: [StoreRecord]) throws(AuditError) -> UInt64 {
        var block = BlockRecords(firstSeq: nextSeq, capacity: records.reduce(0) { $0 + $1.payload.count + 14 })
        for (i, r) in records.enumerated() { block.append(seq: nextSeq + UInt64(i), key: r.key, payload: r.payload) }
        return try write(block)
    }

    /// `write(_:)` of records laid out as they come (the group commit's), which must be at
    /// the next sequence numbers (`nextSeq` on), in order.
    @discardableResult
    public func write(_ records: BlockRecords) throws(AuditError) -> UInt64 {
        guard !readOnly else { throw AuditError(.invalidArgument, "the store was opened read-only", path: directory) }
        guard !records.isEmpty else { return open.nextSeq }
        guard records.largestPayload <= SegmentFormat.maxRecordSize else {
            throw AuditError(
                .invalidArgument,
                "record of \(records.largestPayload) bytes exceeds the \(SegmentFormat.maxRecordSize)-byte limit",
                path: open.path)
        }
        let before = open.blocks.count
        let first = try open.append(records, level: options.openLevel, storeBelow: options.openStoreBelow)
        unsynced.append(contentsOf: open.blocks[before...])
        return first
    }

    /// Makes everything written durable (one fdatasync), then publishes it to readers.
    public func sync() throws(AuditError) {
        guard !unsynced.isEmpty else { return }
        try open.sync()
        lock.withLock {
            openReadable.append(contentsOf: unsynced)
            durableEnd = open.nextSeq
        }
        // Emptied after the copy: emptied while a copy shared its storage, it was reallocated
        // at full capacity on every group commit.
        unsynced.removeAll(keepingCapacity: true)
    }

    /// Rotates if the open segment holds `options.rotateBytes` or more.
    @discardableResult
    public func rotateIfFull() throws(AuditError) -> Bool {
        guard open.rawBytes >= options.rotateBytes || open.recordCount >= SegmentFormat.maxSegmentRecords / 2 else {
            return false
        }
        try rotate()
        return true
    }

    /// Fills the open segment's file ahead of its blocks with zero bytes, durably, when little
    /// is left (`OpenSegment.fillAhead`): the work after a commit, never on the ack path. Never
    /// more than the segment's rotation size: a rotated segment keeps its zeros until sealed,
    /// and 1 MiB each for 64 KiB segments filled a small disk with nothing.
    public func fillAhead() {
        guard !readOnly else { return }
        open.fillAhead(min(options.fillAhead, options.rotateBytes))
    }

    /// Rotates if the open segment is non-empty and older than `options.rotateAge`.
    @discardableResult
    public func rotateIfOld() throws(AuditError) -> Bool {
        guard open.recordCount > 0, ContinuousClock.now - open.createdAt >= options.rotateAge else { return false }
        try rotate()
        return true
    }

    /// Closes the open segment (already synced) and starts the next one. The old one waits
    /// for `sealRotated()`. Does nothing on an empty open segment.
    public func rotate() throws(AuditError) {
        try sync()
        guard open.recordCount > 0 else { return }
        let next = try OpenSegment.create(directory: directory, segment: open.segment + 1, firstSeq: open.nextSeq)
        lock.withLock {
            rotated.append((open, openReadable))
            open = next
            openReadable = []
        }
    }

    // MARK: Reading (any thread)

    /// One past the last durable sequence number.
    public var endSeq: UInt64 { lock.withLock { durableEnd } }

    /// One past the last entry of the sealed and retired segments (0 when there are none).
    public var sealedEnd: UInt64 { segments().filter { $0.state == .sealed || $0.state == .retired }.last?.endSeq ?? 0 }

    /// Every segment, oldest first.
    public func segments() -> [SegmentInfo] {
        lock.withLock {
            sealed
                + rotated.map {
                    SegmentInfo(
                        segment: $0.0.segment, state: .rotated, path: $0.0.path, firstSeq: $0.0.firstSeq,
                        endSeq: $0.0.nextSeq)
                }
                + [
                    SegmentInfo(
                        segment: open.segment, state: .open, path: open.path, firstSeq: open.firstSeq,
                        endSeq: durableEnd)
                ]
        }
    }

    enum Location {
        case sealed(SegmentInfo)
        case blocks(FileHandleRef, [BlockRef])
    }

    func locate(_ seq: UInt64) throws(AuditError) -> Location {
        let loc: Location? = lock.withLock {
            guard seq < durableEnd else { return nil }
            if seq >= open.firstSeq { return .blocks(open.file, openReadable) }
            for (seg, blocks) in rotated where seq >= seg.firstSeq && seq < seg.nextSeq {
                return .blocks(seg.file, blocks)
            }
            var lo = 0
            var hi = sealed.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if sealed[mid].endSeq <= seq { lo = mid + 1 } else { hi = mid }
            }
            if lo < sealed.count, sealed[lo].firstSeq <= seq { return .sealed(sealed[lo]) }
            return nil
        }
        guard let loc else {
            throw AuditError(.notFound, "sequence number \(seq) is not stored (the log ends before \(endSeq))")
        }
        if case .sealed(let info) = loc, info.state == .retired {
            throw AuditError(.retired, "entry \(seq) is not here: " + info.retiredMessage, path: info.path)
        }
        return loc
    }

    /// The cached reader of sealed segment `n`, if there is one.
    func cachedReader(_ n: UInt64) -> SealedSegment? { lock.withLock { cache.first { $0.0 == n }?.1 } }

    /// An open reader for sealed segment `info`, from a small cache.
    public func sealedSegment(_ info: SegmentInfo) throws(AuditError) -> SealedSegment {
        if let s = cachedReader(info.segment) { return s }
        let s = try SealedSegment(path: info.path)
        lock.withLock {
            cache.removeAll { $0.0 == info.segment }
            cache.append((info.segment, s))
            if cache.count > Self.cacheSize { cache.removeFirst() }
        }
        return s
    }
}
