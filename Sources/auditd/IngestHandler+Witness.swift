import AuditWire
import NIOCore
import NIOPosix

/// The frames that make every writer a witness (format-spec.md §9.1): CHECKPOINT and INCLUSION.
extension IngestHandler {
    func answerCheckpoint(_ f: Frame, context: ChannelHandlerContext) {
        // Every writer a witness: the latest checkpoint, and the proof that it extends
        // the one the writer holds (format-spec.md §9.1).
        guard let request = CheckpointRequest(body: f.body) else {
            refuse(
                .error(
                    id: f.id, code: .malformedFrame,
                    message:
                        "a CHECKPOINT request's body is the tree size the writer holds (u64) and optionally a flags byte (bit 0: the newest cosigned checkpoint; bit 1: with the log's key successions)"
                ), context: context)
            return
        }
        let (old, cosigned) = (request.old, request.cosigned)
        if cosigned && shared.witnessing == nil {
            send(
                .error(
                    id: f.id, code: .unavailable,
                    message: "this log has no witnesses configured, so no checkpoint is cosigned"), context: context)
            return
        }
        guard let cp = cosigned ? shared.witnessing?.cosigned : shared.publication.latest else {
            send(
                .error(
                    id: f.id, code: .unavailable,
                    message: cosigned
                        ? "no checkpoint has its quorum of cosignatures yet; ask again"
                        : "no checkpoint signed yet; ask again after the first append"), context: context)
            return
        }
        do {
            let proof =
                old > 0 && old < cp.checkpoint.size
                ? try shared.ledger.consistencyProof(old: old, new: cp.checkpoint.size) : []
            send(
                Frame(
                    type: .checkpointReply, id: f.id,
                    body: CheckpointReply(
                        note: cp.note, proof: proof.map(\.bytes),
                        successions: request.successions ? shared.ledger.verifier.notes : []
                    ).body), context: context)
        } catch {
            send(
                .error(id: f.id, code: .unavailable, message: "cannot prove consistency from size \(old): \(error)"),
                context: context)
        }
    }

    /// INCLUSION requests one connection may have in flight; more are refused until answered.
    static let maxProofsInFlight = 4

    func answerInclusion(_ f: Frame, context: ChannelHandlerContext) {
        // Receipts: one checkpoint for many entries, and each one's inclusion proof.
        guard let seqs = InclusionReply.seqs(f.body) else {
            refuse(
                .error(
                    id: f.id, code: .malformedFrame,
                    message:
                        "an INCLUSION request's body is count:u16 (1 to \(InclusionReply.maxEntries)) and that many u64 sequence numbers"
                ), context: context)
            return
        }
        let ledger = shared.ledger
        guard let last = seqs.max(), last < ledger.storedCount else {
            send(
                .error(
                    id: f.id, code: .invalidEntry,
                    message:
                        "entry \(seqs.max() ?? 0) is not in the log (it holds \(ledger.storedCount) entries): ask only for sequence numbers your appends were acknowledged with"
                ), context: context)
            return
        }
        guard let cp = shared.publication.latest, last < cp.checkpoint.size else {
            send(
                .error(
                    id: f.id, code: .unavailable,
                    message: "no checkpoint covers these entries yet (one is signed within a second); ask again"),
                context: context)
            return
        }
        guard proofsInFlight < Self.maxProofsInFlight else {
            send(
                .error(
                    id: f.id, code: .unavailable,
                    message:
                        "\(Self.maxProofsInFlight) INCLUSION requests are already being answered on this connection; wait for their answers"
                ), context: context)
            return
        }
        // A thousand proofs take a while: computed off the event loop, so that other writers'
        // acks never wait for them; dropped if the connection closed meanwhile.
        proofsInFlight += 1
        let loop = context.eventLoop
        let channel = context.channel
        let id = f.id
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        NIOThreadPool.singleton.runIfActive(eventLoop: loop) { () -> Frame? in
            guard channel.isActive else { return nil }
            do {
                let proofs = try seqs.map { try ledger.inclusionProof(seq: $0, size: cp.checkpoint.size).map(\.bytes) }
                return Frame(type: .inclusionReply, id: id, body: InclusionReply(note: cp.note, proofs: proofs).body)
            } catch {
                return .error(id: id, code: .unavailable, message: "cannot prove inclusion: \(error)")
            }
        }.whenComplete { result in
            let (h, ctx) = bound.value
            h.proofsInFlight -= 1
            guard channel.isActive else { return }
            switch result {
            case .success(let frame?): h.send(frame, context: ctx)
            case .success(nil): return
            case .failure(let e):
                h.send(.error(id: id, code: .unavailable, message: "cannot prove inclusion: \(e)"), context: ctx)
            }
            h.flush(context: ctx)
        }
    }
}
