import AuditBase
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Append-only storage of opaque records by sequence number, in segment files.
///
/// Writes (`write`, `sync`, `rotate…`) must come from one thread at a time (the commit thread
/// of a `GroupCommitQueue`); reads may come from any thread; `sealRotated` from one sealer.
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

    private let lock = NSLock()
    private let sealMutex = NSLock()
    private var sealed: [SegmentInfo]
    private var rotated: [(OpenSegment, [BlockRef])]
    /// The last few rotated segments sealed, their open files still readable (`unsealed()`).
    private var recentlySealed: [(OpenSegment, [BlockRef])] = []
    private static let recentlySealedKept = 4
    private var open: OpenSegment
    private var openReadable: [BlockRef] = []
    private var unsynced: [BlockRef] = []
    private var durableEnd: UInt64
    private var cache: [(UInt64, SealedSegment)] = []
    private static let cacheSize = 64

    /// What the directory holds, listed and opened (init's steps 1-4).
    private struct Loaded {
        var infos: [SegmentInfo]
        var rotated: [(OpenSegment, [BlockRef])]
        var report: RecoveryReport?
        var open: OpenSegment?
        /// Where the segments end: the next sequence number and segment number.
        var endSeq: UInt64
        var nextSegment: UInt64?
    }

    private static func load(
        directory: String, names: [String], readOnly: Bool, retired: [RetiredSegment]
    ) throws(AuditError) -> Loaded {
        var sealedNums: [UInt64] = []
        var openNums: [UInt64] = []
        for name in names {
            guard let (n, suffix) = SegmentNames.parse(name) else { continue }
            switch suffix {
            case "seg.tmp", "open.tmp": if !readOnly { try FileOps.unlink(directory + "/" + name) }
            case "seg": sealedNums.append(n)
            case "open": openNums.append(n)
            default: continue
            }
        }
        sealedNums.sort()
        openNums.sort()
        let hot = Set(sealedNums)
        let away = retired.filter { !hot.contains($0.segment) }
        // A sealed or retired segment's open file is stale: its seal committed (and maybe its
        // retirement after it) before the unlink of the open file happened.
        let sealedSet = hot.union(away.map(\.segment))
        if !readOnly {
            for n in openNums where sealedSet.contains(n) { try FileOps.unlink(directory + "/" + SegmentNames.open(n)) }
            try FileOps.fsyncDirectory(directory)
        }
        openNums.removeAll { sealedSet.contains($0) }

        var infos: [SegmentInfo] = []
        for n in sealedNums { infos.append(try peekSealed(directory + "/" + SegmentNames.sealed(n), segment: n)) }
        for r in away {
            guard r.endSeq > r.firstSeq else {
                throw AuditError(
                    .corrupt, "retired segment \(r.segment) is named with no entries (\(r.firstSeq)..<\(r.endSeq))",
                    path: r.path)
            }
            infos.append(
                SegmentInfo(
                    segment: r.segment, state: .retired, path: r.path, firstSeq: r.firstSeq, endSeq: r.endSeq,
                    label: r.label, hint: r.hint))
        }
        infos.sort { $0.segment < $1.segment }
        var rot: [(OpenSegment, [BlockRef])] = []
        var report: RecoveryReport?
        var openSeg: OpenSegment?
        for (i, n) in openNums.enumerated() {
            let isLast = i == openNums.count - 1
            let path = directory + "/" + SegmentNames.open(n)
            let seg: OpenSegment
            let rep: RecoveryReport
            do {
                (seg, rep) = try OpenSegment.recover(
                    path: path, expectedSegment: n, allowCut: isLast, readOnly: readOnly)
            } catch {
                // A reader beside the writer: the segment was sealed since it was listed (its
                // open file goes once its sealed file is in place; segments seal oldest first).
                let sealedPath = directory + "/" + SegmentNames.sealed(n)
                guard readOnly, rot.isEmpty, !FileOps.exists(path), FileOps.exists(sealedPath) else { throw error }
                infos.append(try peekSealed(sealedPath, segment: n))
                continue
            }
            if isLast {
                openSeg = seg
                report = rep
            } else {
                rot.append((seg, seg.blocks))
            }
        }
        // Check that segment numbers and sequence ranges continue one another, from 0.
        var expectedSeq: UInt64 = 0
        var expectedNum: UInt64? = 0
        let chain: [(UInt64, UInt64, UInt64, String)] =
            infos.map { ($0.segment, $0.firstSeq, $0.endSeq, $0.path) }
            + rot.map { ($0.0.segment, $0.0.firstSeq, $0.0.nextSeq, $0.0.path) }
            + (openSeg.map { [($0.segment, $0.firstSeq, $0.nextSeq, $0.path)] } ?? [])
        for (num, first, end, path) in chain {
            if let e = expectedNum, num != e {
                throw AuditError(
                    .corrupt,
                    "segment \(e) is missing (found \(num) next)"
                        + (e == 0
                            ? "; segments that left the directory must be named as retired when it is opened" : ""),
                    path: path)
            }
            guard first == expectedSeq else {
                throw AuditError(
                    .corrupt,
                    "segment starts at sequence \(first) but the previous one ends before \(expectedSeq): a segment is missing, truncated or swapped",
                    path: path, offset: 24)
            }
            expectedSeq = end
            expectedNum = num + 1
        }
        return Loaded(
            infos: infos, rotated: rot, report: report, open: openSeg, endSeq: expectedSeq, nextSegment: expectedNum)
    }

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

    /// Retires sealed segment `n` (once the caller's marker at `path` is durable), so reads of
    /// it say where its records went. The caller then removes its hot files.
    public func retire(_ n: UInt64, path: String, label: String, hint: String) throws(AuditError) {
        let ok: Bool = lock.withLock {
            guard let i = sealed.firstIndex(where: { $0.segment == n }), sealed[i].state == .sealed else {
                return false
            }
            sealed[i].state = .retired
            sealed[i].label = label
            sealed[i].hint = hint
            sealed[i].path = path
            cache.removeAll { $0.0 == n }
            return true
        }
        guard ok else {
            throw AuditError(.invalidArgument, "segment \(n) is not a sealed hot segment", path: directory)
        }
    }

    /// Picks up retired segments whose sealed file is back (`N.seg` present again, put there by
    /// this or another process).
    @discardableResult
    public func reinstateReturned() throws(AuditError) -> [SegmentInfo] {
        let candidates = lock.withLock { sealed.filter { $0.state == .retired } }
        var restored: [SegmentInfo] = []
        for c in candidates where FileOps.exists(directory + "/" + SegmentNames.sealed(c.segment)) {
            let info = try Self.peekSealed(directory + "/" + SegmentNames.sealed(c.segment), segment: c.segment)
            guard info.firstSeq == c.firstSeq, info.endSeq == c.endSeq else { continue }
            lock.withLock { if let i = sealed.firstIndex(where: { $0.segment == c.segment }) { sealed[i] = info } }
            restored.append(info)
        }
        return restored
    }

    /// Reads just enough of a sealed file (header, trailer, footer prefix) to list it.
    static func peekSealed(_ path: String, segment: UInt64) throws(AuditError) -> SegmentInfo {
        let fd = try FileOps.open(path, O_RDONLY)
        defer { close(fd) }
        let size = try FileOps.size(fd, path: path)
        guard size >= Int64(SegmentFormat.headerSize + SegmentFormat.trailerSize) else {
            throw AuditError(.corrupt, "sealed segment is truncated (\(size) bytes)", path: path, offset: 0)
        }
        let header = try SegmentHeader.parse(
            try FileOps.preadExact(fd, count: SegmentFormat.headerSize, at: 0, path: path), path: path)
        let (fOff, fLen, _) = try SegmentTrailer.read(fd: fd, fileSize: size, path: path)
        guard fLen >= 32 else {
            throw AuditError(.corrupt, "sealed segment footer is too short (\(fLen) bytes)", path: path, offset: fOff)
        }
        var f = ByteReader(try FileOps.preadExact(fd, count: 32, at: fOff, path: path))
        do {
            guard SegmentFormat.footerHasDictionary(magic: try f.read(count: 8)) != nil else {
                throw AuditError(.corrupt, "sealed segment footer: bad magic", path: path, offset: fOff)
            }
            let seg = try f.readU64()
            let first = try f.readU64()
            let last = try f.readU64()
            guard seg == segment, header.segment == segment, first == header.firstSeq, last >= first,
                last < SegmentFormat.maxSeq
            else {
                throw AuditError(
                    .corrupt, "header, footer and file name disagree on segment \(segment)", path: path, offset: fOff)
            }
            return SegmentInfo(segment: segment, state: .sealed, path: path, firstSeq: first, endSeq: last + 1)
        } catch let e as AuditError {
            throw e
        } catch {
            throw AuditError(.corrupt, "sealed segment footer is cut short", path: path, offset: fOff)
        }
    }

    // MARK: Writing (one thread)

    /// The sequence number the next record will get.
    public var nextSeq: UInt64 { open.nextSeq }

    /// The number of the segment being appended to (any thread).
    public var openSegment: UInt64 { lock.withLock { open.segment } }

    /// Appends `records` as one block at the next sequence numbers and returns the first.
    /// Nothing is durable, or readable, until `sync()` returns.
    @discardableResult
    public func write(_ records: [StoreRecord]) throws(AuditError) -> UInt64 {
        guard !readOnly else { throw AuditError(.invalidArgument, "the store was opened read-only", path: directory) }
        guard !records.isEmpty else { return open.nextSeq }
        for r in records where r.payload.count > SegmentFormat.maxRecordSize {
            throw AuditError(
                .invalidArgument,
                "record of \(r.payload.count) bytes exceeds the \(SegmentFormat.maxRecordSize)-byte limit",
                path: open.path)
        }
        let before = open.blocks.count
        let first = try open.append(records, level: options.openLevel)
        unsynced.append(contentsOf: open.blocks[before...])
        return first
    }

    /// Makes everything written durable (one fdatasync), then publishes it to readers.
    public func sync() throws(AuditError) {
        guard !unsynced.isEmpty else { return }
        try open.sync()
        let refs = unsynced
        unsynced.removeAll(keepingCapacity: true)
        lock.withLock {
            openReadable.append(contentsOf: refs)
            durableEnd = open.nextSeq
        }
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

    // MARK: Sealing (one sealer)

    /// True when rotated segments are waiting to be sealed.
    public var hasRotated: Bool { lock.withLock { !rotated.isEmpty } }
    /// True when more rotated segments wait than `maxRotatedBacklog` allows.
    public var rotatedBacklogFull: Bool { lock.withLock { rotated.count > options.maxRotatedBacklog } }

    /// Seals every rotated segment, oldest first: writes the sealed file, calls `onSealed`,
    /// then removes the open file (step 7: unlink; step 8: fsync the directory).
    @discardableResult
    public func sealRotated() throws -> [SegmentInfo] { try sealRotated(over: 0) }

    /// Back-pressure: seals the oldest rotated segments until no more than
    /// `maxRotatedBacklog` wait (one, usually, and none when the sealer got there first).
    /// Sealing every waiting segment here stalled the commit thread for seconds.
    @discardableResult
    public func sealBacklog() throws -> [SegmentInfo] { try sealRotated(over: options.maxRotatedBacklog) }

    private func sealRotated(over limit: Int) throws -> [SegmentInfo] {
        sealMutex.lock()
        defer { sealMutex.unlock() }
        var done: [SegmentInfo] = []
        while let (seg, blocks) = lock.withLock({ rotated.count > limit ? rotated.first : nil }) {
            var records: [StoredRecord] = []
            records.reserveCapacity(Int(seg.recordCount))
            for b in blocks { records.append(contentsOf: try OpenSegment.readBlock(b, file: seg.file)) }
            let path = try Sealer.seal(
                records: records, segment: seg.segment, firstSeq: seg.firstSeq, directory: directory,
                blockTarget: options.blockTarget, level: options.sealLevel,
                dictionarySize: options.dictionarySize, dictionaries: dictionaries,
                threads: options.sealThreads)
            let info = SegmentInfo(
                segment: seg.segment, state: .sealed, path: path, firstSeq: seg.firstSeq, endSeq: seg.nextSeq)
            try onSealed?(info)
            lock.withLock {
                let done = rotated.removeFirst()
                sealed.append(info)
                recentlySealed.append(done)
                if recentlySealed.count > Self.recentlySealedKept { recentlySealed.removeFirst() }
            }
            try FileOps.unlink(seg.path)
            try FileOps.fsyncDirectory(directory)
            done.append(info)
        }
        return done
    }

    /// The durable part of each segment not sealed yet, oldest first (rotated ones, then the
    /// open one), after the open files of the last few segments sealed (still readable through
    /// their descriptors): a copier that was behind at a seal can still finish its copy.
    public func unsealed() -> [UnsealedSegment] {
        lock.withLock {
            (recentlySealed + rotated).map {
                UnsealedSegment(
                    segment: $0.0.segment, firstSeq: $0.0.firstSeq, isOpen: false, blocks: $0.1, file: $0.0.file)
            }
                + [
                    UnsealedSegment(
                        segment: open.segment, firstSeq: open.firstSeq, isOpen: true, blocks: openReadable,
                        file: open.file)
                ]
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
