import Archive
import AuditBase
import AuditEntries
import AuditIndex
import Foundation
import LogProofs
import LogTree
import SegmentStore

/// Walking the segments in order (format-spec.md §10): hot segments entry by entry, read on
/// one thread and prepared on another while the previous batch is checked on this one;
/// archived ones stepped over through their stubs.
extension ChainChecker {
    /// Steps over an archived (or purged) segment without its entries: the leaf hashes come from
    /// the stored tree (so every checkpoint root is still recomputed over them) and the org chains
    /// continue from the stub's summary, whose signature is checked.
    public mutating func skipArchived(_ info: SegmentInfo, verifier: LogKeys) throws -> VerificationFailure? {
        guard info.firstSeq == position else {
            return VerificationFailure(
                seq: position, path: info.path, offset: nil,
                message: "archived segment starts at \(info.firstSeq), expected \(position)")
        }
        let stub: ArchivedStub
        do {
            stub = try ArchivedStub.load(info.path)
            try stub.checkNote(verifier: verifier)
        } catch {
            return VerificationFailure(seq: info.firstSeq, path: info.path, offset: 0, message: "\(error)")
        }
        var seq = info.firstSeq
        while seq < info.endSeq {
            let k = Int(min(UInt64(8192), info.endSeq - seq))
            let leaves = try tree.leaves(from: seq, count: k)
            for leaf in leaves {
                prev = leaf
                if let m = try tiles.append(leaf) {
                    return VerificationFailure(seq: seq, path: info.path, offset: nil, message: m)
                }
                while nextCp < checkpoints.count && checkpoints[nextCp].size == seq + 1 {
                    if tiles.root() != checkpoints[nextCp].root {
                        return VerificationFailure(
                            seq: seq, path: checkpointPath, offset: checkpoints[nextCp].offset,
                            message:
                                "recomputed root at size \(seq + 1) (across archived segment \(info.segment)) does not match the signed checkpoint"
                        )
                    }
                    nextCp += 1
                }
                seq += 1
            }
        }
        // §5.1 holds across archived segments too: their times lie between the entries around
        // them. A stub's times are signed through its manifest; those of a stub without one
        // (§12.3) are held to this order only, so a moved `max_time` shows here.
        if let first = stub.orgs.map(\.min_time).min(), let last = stub.orgs.map(\.max_time).max() {
            if let o = stub.orgs.first(where: { $0.min_time > $0.max_time }) {
                return VerificationFailure(
                    seq: info.firstSeq, path: info.path, offset: 0,
                    message: "stub summary of org \(o.org): min_time is after max_time")
            }
            guard first >= lastTime else {
                let previous =
                    lastTimeStub.map { "the latest time archived segment \($0)'s stub claims" }
                    ?? "the previous entry's"
                return VerificationFailure(
                    seq: info.firstSeq, path: info.path, offset: 0,
                    message:
                        "archived segment \(info.segment)'s stub says its entries were received from \(Timestamp.format(first)), earlier than \(previous) (\(Timestamp.format(lastTime))): received_at never decreases in sequence order (a stub's times were edited)"
                )
            }
            lastTime = last
            lastTimeStub = info.segment
        }
        for o in stub.orgs {
            guard o.last_seq >= info.firstSeq, o.last_seq < info.endSeq, o.entries > 0,
                o.entries <= info.endSeq - info.firstSeq
            else {
                return VerificationFailure(
                    seq: info.firstSeq, path: info.path, offset: 0,
                    message: "stub summary of org \(o.org) points outside the segment")
            }
            // The org chain continues through the segment: its count before plus its entries.
            if o.count_after != (orgs[o.org]?.count ?? 0) + o.entries {
                return VerificationFailure(
                    seq: info.firstSeq, path: info.path, offset: 0,
                    message:
                        "stub summary of org \(o.org): count_after \(o.count_after) is not its \(orgs[o.org]?.count ?? 0) entries before the segment plus the \(o.entries) in it"
                )
            }
            orgs[o.org] = OrgPosition(count: o.count_after, lastSeq: o.last_seq, lastHash: try tree.leaf(o.last_seq))
        }
        position = info.endSeq
        if let t = stub.orgs.map(\.max_time).max() { archivedUntil = max(archivedUntil ?? t, t) }
        return nil
    }

    /// What the reading thread sends on (through the preparing one) to the checking one, in
    /// sequence order: `Batch` is the records read, then (from the preparing thread) prepared.
    enum Piece<Batch> {
        /// A hot segment begins (the checker keeps its state, to step back if it is archived
        /// while being read), with its index file once the preparing thread has read it.
        case start(SegmentInfo, SealedIndexRows?)
        case batch(Batch)
        /// A hot segment's entries were all sent.
        case done(SegmentInfo)
        /// Reading a hot segment failed after the batches sent.
        case failed(SegmentInfo, Error)
        /// An archived segment, stepped over through its stub.
        case archived(SegmentInfo)
    }

    /// Checks segments from `position` up to (not including) `end`, hot or archived. When
    /// `stop` answers true (asked between batches) it returns early with nil: `position` says
    /// how far the check got, and the caller, who asked to stop, must not take it as done.
    public mutating func checkSegments(
        upTo end: UInt64, verifier: LogKeys, batchSize: Int = 8192,
        progress: ((UInt64) -> Void)? = nil, stop: (() -> Bool)? = nil
    ) throws -> VerificationFailure? {
        // A pipeline across segments: one thread reads (and decompresses) the next batches,
        // another prepares them (on all cores), and this one checks; a segment's end (its index
        // file's check, say) no longer empties it. Each stage holds at most two batches. The
        // threads run at this thread's priority (a background pass stays background).
        let nice = ThreadPriority.current()
        let raw = BatchPipe<Piece<RecordRun>>()
        let pipe = BatchPipe<Piece<PreparedBatch>>()
        let store = self.store
        let tree = self.tree
        let start = position
        let withPersonal = personal != nil
        let producer = namedThread("verify-read", nice: nice, stackSize: 1 << 20) {
            defer { raw.producerDone() }
            for info in store.segments() where info.endSeq > start && info.firstSeq < end {
                if info.state == .retired {
                    guard raw.put(.batch(.archived(info))) else { return }
                    continue
                }
                guard raw.put(.batch(.start(info, nil))) else { return }
                var listening = true
                do {
                    // A sealed segment's records stay in their expanded blocks (no copy each).
                    try store.scanRuns(from: max(start, info.firstSeq), to: min(end, info.endSeq), batch: batchSize) {
                        listening = raw.put(.batch(.batch($0)))
                        return listening
                    }
                    guard listening else { return }
                    guard raw.put(.batch(.done(info))) else { return }
                } catch {
                    guard raw.put(.batch(.failed(info, error))) else { return }
                }
            }
            _ = raw.put(.end)
        }
        let interners = (0..<max(1, ProcessInfo.processInfo.activeProcessorCount)).map { _ in StringInterner() }
        let (indexDirectory, collect) = (self.indexDirectory, self.collect)
        let preparer = namedThread("verify-prepare", nice: nice, stackSize: 1 << 20) {
            // The current segment's index file, its rows compared with the entries as they
            // are prepared.
            var rows: SealedIndexRows?
            forward: while true {
                let next: BatchPipe<Piece<PreparedBatch>>.Item
                switch raw.take() {
                case .batch(.batch(let r)):
                    do {
                        next = .batch(
                            .batch(
                                try ChainChecker.prepare(
                                    r, personal: withPersonal, interners: interners, tree: tree, index: rows,
                                    collect: collect)))
                    } catch {
                        _ = pipe.put(.failed(error))
                        break forward
                    }
                case .batch(.start(let info, _)):
                    rows = ChainChecker.loadIndex(info, from: start, directory: indexDirectory)
                    next = .batch(.start(info, rows))
                case .batch(.done(let info)):
                    rows = nil
                    next = .batch(.done(info))
                case .batch(.failed(let info, let e)):
                    rows = nil
                    next = .batch(.failed(info, e))
                case .batch(.archived(let info)): next = .batch(.archived(info))
                case .end:
                    _ = pipe.put(.end)
                    break forward
                case .failed(let e):
                    _ = pipe.put(.failed(e))
                    break forward
                }
                guard pipe.put(next) else { break }
            }
            // The reading thread has returned before the checker hears that this one has.
            raw.cancelAndJoin()
            pipe.producerDone()
        }
        producer.start()
        preparer.start()
        defer { pipe.cancelAndJoin() }
        let disposal = Disposal(name: "verify-free", nice: nice)
        defer { disposal.close() }
        var before = self
        while true {
            switch pipe.take() {
            case .batch(.archived(let info)):
                if stop?() == true { return nil }
                if let f = try skipArchived(info, verifier: verifier) { return f }
                progress?(position)
            case .batch(.start(let info, let rows)):
                if stop?() == true { return nil }
                // The state before the last segment goes to be freed.
                disposal.drop(before)
                before = self
                startIndex(info, rows: rows)
            case .batch(.batch(let prepared)):
                let failure = try check(prepared: prepared)
                disposal.drop(prepared)
                if let failure { return failure }
                progress?(position)
                if stop?() == true { return nil }
            case .batch(.done(let info)):
                if let f = finishIndex(info) { return f }
                progress?(position)
            case .batch(.failed(let info, let e)):
                // The archiver may have moved the segment while it was being read: then it is
                // stepped over as archived, from where it started. The store says so itself
                // (`.retired`) from the moment the segment is retired, before its file goes.
                // Anything else is a failure.
                let stub = store.directory + "/" + ArchivedStub.fileName(info.segment)
                let retired = (e as? AuditError)?.code == .retired || !FileOps.exists(info.path)
                guard e is AuditError, info.state == .sealed, info.firstSeq >= before.position, retired,
                    FileOps.exists(stub)
                else { throw e }
                self = before
                let moved = SegmentInfo(
                    segment: info.segment, state: .retired, path: stub, firstSeq: info.firstSeq, endSeq: info.endSeq)
                if let f = try skipArchived(moved, verifier: verifier) { return f }
                progress?(position)
            case .end:
                return nil
            case .failed(let e):
                throw e
            }
        }
    }
}
