import AuditEntries
import AuditWire
import ChainIndex
import Foundation
import NIOCore
import Replication

/// The way of a batch of appends to the ledger and back: one `Ledger.append` for what one read
/// brought, the acks (or the reason nothing was stored) written on the connection's loop once
/// the ledger reports the entries durable, and in replicated mode once the bucket holds them.
extension IngestHandler {
    func submit(context: ChannelHandlerContext) {
        guard !batch.isEmpty else { return }
        let items = batch
        batch.removeAll(keepingCapacity: true)
        // Handed over, not shared: the ledger moves each entry out of this array.
        var entries: [PreparedEntry] = []
        swap(&entries, &batchEntries)
        batchEntries.reserveCapacity(entries.count)
        // Replicated mode with the store gone for longer than a writer would wait: nothing is
        // stored, and every writer is told why at once.
        if shared.ackMode == .replicated,
            let why = shared.publication.replicator?.refusal(after: shared.replicationWait)
        {
            for it in items {
                if let k = it.idemKey { shared.idempotency.fail(k, ReplicationRefusal(message: why)) }
                send(.error(id: it.id, code: .unavailable, message: "not stored: " + why), context: context)
            }
            return
        }
        shared.drain.add(items.count)
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let overTotal = shared.drain.isOverLimit
        for a in state.submitted(items.count, overTotal: overTotal) { apply(a, context: context) }
        if overTotal {
            shared.drain.whenBelowHalf {
                loop.execute {
                    let (h, ctx) = bound.value
                    h.apply(h.state.totalBelowHalf(), context: ctx)
                }
            }
        }
        let metrics = shared.metrics
        let bytes = entries.reduce(0) { $0 + $1.content.count }
        // The callback runs on the thread that committed the group (the commit thread, or this
        // loop's own when nothing else was committing): it only hops to this connection's loop,
        // which also keeps the acks of one connection in order.
        let replicated = shared.ackMode == .replicated ? shared.publication.replicator : nil
        let wait = shared.replicationWait
        let idempotency = shared.idempotency
        let follower = shared.publication.replicator
        // One entry from one read: the lone writer's fast lane. This loop commits it itself if
        // nothing else is committing; a larger batch leaves the loop free to read more meanwhile.
        let single = entries.count == 1
        shared.ledger.append(consume entries, inline: single) { result in
            // The entries are stored: a retry with the same key finds them, whatever the bucket does.
            if case .success(let receipts) = result {
                for (it, r) in zip(items, receipts) { if let k = it.idemKey { idempotency.complete(k, r) } }
                // Dated for the lag; in local mode the tail thread is woken early once enough wait.
                if let last = receipts.last { follower?.committed(end: last.seq + 1) }
            }
            let finish: @Sendable (Bool) -> Void = { inBucket in
                let done = ContinuousClock.now
                let answer: @Sendable () -> Void = {
                    let (h, ctx) = bound.value
                    h.completed(items, result, inBucket: inBucket, context: ctx)
                    // Counted once the acks are written.
                    if case .success = result {
                        metrics.ingested(count: items.count, bytes: bytes)
                        for it in items { metrics.ackLatency(done - it.started) }
                    }
                }
                // Committed on this loop (the lone writer's fast lane), and no earlier batch of
                // this connection still waits for its acks: this one goes out now, not after a
                // queued task (acks of one connection stay in order).
                if loop.inEventLoop && bound.value.0.state.inflight == items.count {
                    answer()
                } else {
                    loop.execute(answer)
                }
            }
            // Replicated mode: the ack waits for the bucket (group commits share its uploads).
            if let replicated, case .success(let receipts) = result, let last = receipts.last {
                replicated.whenReplicated(end: last.seq + 1, deadline: .now + wait, finish)
            } else {
                finish(true)
            }
        }
    }

    /// The ack of an entry stored before (an idempotency key seen again): in replicated mode
    /// only once the bucket holds it too.
    func ackDuplicate(id: UInt64, _ rc: Receipt, context: ChannelHandlerContext) {
        guard shared.ackMode == .replicated, let r = shared.publication.replicator else {
            sendAck(id: id, rc, duplicate: true, context: context)
            return
        }
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let wait = shared.replicationWait
        r.whenReplicated(end: rc.seq + 1, deadline: .now + wait) { ok in
            loop.execute {
                let (h, ctx) = bound.value
                if ok {
                    h.sendAck(id: id, rc, duplicate: true, context: ctx)
                } else {
                    h.send(Self.notInBucket(id: id, seq: rc.seq, wait: wait), context: ctx)
                }
                h.flush(context: ctx)
            }
        }
    }

    /// The answer to an entry stored here that the bucket did not confirm in time.
    static func notInBucket(id: UInt64, seq: UInt64, wait: Duration) -> Frame {
        .error(
            id: id, code: .unavailable,
            message:
                "entry \(seq) is stored on this machine, but the object store did not confirm it within \(wait.components.seconds) s (ack replicated), so it is not acknowledged; send it again with the same idempotency key to get its ack once the store holds it (without a key, a resend stores it twice)"
        )
    }

    private func completed(
        _ items: [Pending], _ result: Result<[Receipt], Error>, inBucket: Bool, context: ChannelHandlerContext
    ) {
        switch result {
        case .success(let receipts):
            for (it, r) in zip(items, receipts) {
                if inBucket {
                    sendAck(id: it.id, r, duplicate: false, expected: items.count, context: context)
                } else {
                    send(Self.notInBucket(id: it.id, seq: r.seq, wait: shared.replicationWait), context: context)
                }
            }
        case .failure(let err):
            shared.logger.error("append failed", metadata: ["error": "\(err)"])
            for it in items {
                if let k = it.idemKey { shared.idempotency.fail(k, err) }
                send(.error(id: it.id, code: .unavailable, message: "not stored: \(err)"), context: context)
            }
        }
        shared.drain.remove(items.count)
        flush(context: context)
        apply(state.answered(items.count), context: context)
    }
}
