import AuditBase
import AuditEntries
import Foundation
import LogProofs
import SegmentStore

/// The group commit: what the committing thread (the commit thread, or a caller that found the
/// queue idle: `GroupCommitQueue`) does with each group of operations
/// (format-spec.md §3).
extension Ledger {
    /// One group commit (one at a time): the numbered script of the durable write.
    ///
    /// 1. retry deferred work if writes are suspended, refusing the group's entries if it
    ///    still fails; 2. sequence each entry (`Sequencer`: `received_at`, sequence number,
    ///    org position, link, leaf hash); 3. write one block; 4. fdatasync (a failure stops
    ///    writes until a restart, and fails the group: nothing was acknowledged); 5. from here
    ///    the entries are durable: the positions advance, the index takes their rows and the
    ///    tree their leaves; 6. the work the group asked for by name: a rotation, each
    ///    anchor's checkpoint, a checkpoint now. The acks go out when this returns
    ///    (format-spec.md §3); the periodic work (`maintain`) follows them. A failure after
    ///    step 4 suspends writes until a retry succeeds, and never fails the group.
    /// `batches` are the group's requests, each in its own array (joining them would copy
    /// every operation), handed over: each operation is taken out of its array, not copied.
    func commit(_ batches: consuming [[Op]]) throws -> [Receipt?] {
        let count = batches.reduce(0) { $0 + $1.count }
        // `settle()`: the work after the previous group's acks is done; nothing to commit.
        guard count > 0 else { return [] }
        let entries = batches.reduce(0) {
            $1.reduce($0) {
                switch $1 {
                case .entry, .anchor, .handOver: return $0 + 1
                default: return $0
                }
            }
        }
        if case .suspended = state { retryDeferredWork() }
        guard state.isAccepting else {
            publish(refused: entries)
            throw AuditError(entries > 0 ? "not stored: \(state)" : "\(state)")
        }
        var out: [Receipt?] = []
        out.reserveCapacity(count)
        // One copy of the sequencer for the group: each call on the stored property copied it
        // (a retain and a release of its tables) for every entry.
        let sequencer = self.sequencer
        var group = sequencer.group(at: store.nextSeq, bytes: groupBytes)
        // Checkpoints at exact sizes, in order: an anchor's, or a handover's (with its new key).
        var anchors: [(size: UInt64, handOver: (NoteSigner, KeySuccession)?)] = []
        var checkpoint = false
        var rotate = false
        var values: [(seq: UInt64, rows: [SealedRow])] = []
        for b in batches.indices {
            for i in batches[b].indices {
                // Taken out, not copied: a copy of an entry is a retain of each string and
                // array it holds, and a release of each when the group's arrays go.
                var op = Op.maintenance
                swap(&op, &batches[b][i])
                switch consume op {
                case .verbatim(let r):
                    // Checked before anything is written: a record that does not continue the log
                    // fails the group whole.
                    out.append(try sequencer.verbatim(r, in: &group))
                case .entry(let e):
                    let r = sequencer.sequence(e, in: &group)
                    if !e.sealedRows.isEmpty { values.append((r.seq, e.sealedRows)) }
                    out.append(r)
                case .anchor(let e):
                    let r = sequencer.sequence(e, in: &group)
                    if !e.sealedRows.isEmpty { values.append((r.seq, e.sealedRows)) }
                    anchors.append((r.seq + 1, nil))
                    out.append(r)
                case .handOver(let plan):
                    // Its statement names the size the entry makes: built here, where it is known.
                    // One that cannot be built is not stored; the group's other entries are.
                    let built: (PreparedEntry, KeySuccession)
                    do { built = try handOverEntry(plan, handover: group.nextSeq + 1) } catch {
                        keyLock.withLock { handOverFailure = error }
                        out.append(nil)
                        continue
                    }
                    let (e, s) = built
                    let r = sequencer.sequence(e, in: &group)
                    anchors.append((r.seq + 1, (plan.new, s)))
                    out.append(r)
                case .checkpoint:
                    checkpoint = true
                    out.append(nil)
                case .maintenance:
                    due.tick = true
                    out.append(nil)
                case .rotate:
                    rotate = true
                    out.append(nil)
                }
            }
        }
        if !group.records.isEmpty {
            let started = ContinuousClock.now
            // The values first, durable before the entries that commit to them: a crash between
            // leaves rows beyond the log's end, which the next start cuts (format-spec.md §5.4.2).
            if let first = values.first?.seq {
                do {
                    try personal.write(values)
                    try personal.sync()
                } catch {
                    try? personal.cut(from: first)
                    throw error
                }
            }
            // A failed write leaves nothing behind (the store cuts its partial block): the
            // entries are not stored, and the next group may try again.
            do { try store.write(group.records) } catch {
                if let first = values.first?.seq { try? personal.cut(from: first) }
                throw error
            }
            do {
                try store.sync()
            } catch {
                state.syncFailed(error)
                publish()
                throw error
            }
            // Durable: everything below may fail without un-acknowledging these entries.
            if options.onCommit != nil { commitTimes.append((group.records.count, ContinuousClock.now - started)) }
            groupBytes = group.records.byteCount
            self.sequencer.adopt(group)
            index.add(group.takeHits(), openSince: store.openFirstSeq)
            unappliedLeaves.append(contentsOf: group.leaves)
            due.wrote = true
        }
        deferred {
            try applyLeaves()
            if rotate { try store.rotate() }
            for a in anchors {
                if let (new, s) = a.handOver {
                    try completeHandOver(to: new, s)
                } else {
                    try signCheckpoint(size: a.size)
                }
            }
            if checkpoint { try signCheckpoint() }
        }
        return out
    }
}
