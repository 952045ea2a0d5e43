import AuditBase
import Foundation

/// Sealing rotated segments (one sealer at a time), and what is not sealed yet.
extension SegmentStore {
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

    /// Slowdown: while more rotated segments wait than `slowdownBacklog` allows, waits for a
    /// seal to finish, at most `slowdownWait`; returns whether it waited. The commit thread
    /// calls it between groups, so writes outrunning the sealer wait for it a little each time,
    /// where at `maxRotatedBacklog` every ack would wait for a whole seal.
    @discardableResult
    public func waitForSealer() -> Bool {
        sealProgress.lock()
        defer { sealProgress.unlock() }
        guard lock.withLock({ rotated.count > options.slowdownBacklog }) else { return false }
        let deadline = Date(timeIntervalSinceNow: options.slowdownWait.inSeconds)
        while lock.withLock({ rotated.count > options.slowdownBacklog }) {
            if !sealProgress.wait(until: deadline) { break }
        }
        return true
    }

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
            // Under `sealProgress`'s lock: a writer that saw the backlog full is waiting by now.
            sealProgress.withLock { sealProgress.broadcast() }
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
}
