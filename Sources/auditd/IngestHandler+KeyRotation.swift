import AuditBase
import AuditWire
import ChainIndex
import Foundation
import LogProofs
import NIOCore

/// ROTATE-KEY (format-spec.md §8.8): the daemon hands the log's key on, since only the process
/// that holds the log may append the record and sign with both keys. Only the daemon's own
/// user or root may ask; one handover runs at a time, off the event loop.
extension IngestHandler {
    /// Held while a handover runs: a second one is told to retry, not queued.
    static let rotating = NSLock()

    func answerRotateKey(_ f: Frame, context: ChannelHandlerContext) {
        guard allowsOperator(f, "rotate the log's key", context: context) else { return }
        struct Request: Decodable {
            var key: String
            var grace: UInt64
            var actor: String
        }
        guard let r = try? JSONDecoder().decode(Request.self, from: Data(f.body)) else {
            send(
                .error(
                    id: f.id, code: .malformedFrame,
                    message: "a ROTATE-KEY body is JSON {\"key\" (a signer key), \"grace\" (entries), \"actor\"}"),
                context: context)
            return
        }
        let new: NoteSigner
        do { new = try NoteSigner(r.key) } catch {
            send(.error(id: f.id, code: .invalidEntry, message: "the new key: \(error.description)"), context: context)
            return
        }
        let (ledger, logger, keyPath) = (shared.ledger, shared.logger, shared.keyPath)
        runExclusive(f, lock: Self.rotating, busy: "a key rotation is running; retry when it ends", context: context) {
            id in
            let reply: Frame
            do {
                let old = ledger.verifier.current
                try KeyFile.stage(new, path: keyPath)
                let done: Ledger.HandOver
                do {
                    done = try ledger.handOver(to: new, grace: r.grace, actor: r.actor, via: "auditd")
                } catch {
                    if ledger.verifier.current != new.verifier { try? FileOps.unlink(KeyFile.nextPath(keyPath)) }
                    throw error
                }
                try KeyFile.promote(path: keyPath, key: new.verifier)
                let s = done.succession
                let body: [String: Any] = [
                    "seq": done.record.seq, "handover": s.handover, "grace_end": s.graceEnd, "old_key": old.text,
                    "new_key": s.new.text, "statement": s.note,
                ]
                reply = Frame(
                    type: .keyRotated, id: id,
                    body: Array((try? JSONSerialization.data(withJSONObject: body)) ?? Data()))
                logger.notice(
                    "handed the log's key on",
                    metadata: ["new_key": "\(s.new.text)", "handover": "\(s.handover)", "key_file": "\(keyPath)"])
            } catch let e as AuditError where e.code == .invalidArgument {
                reply = .error(id: id, code: .invalidEntry, message: e.message)
            } catch {
                reply = .error(id: id, code: .unavailable, message: "\(error)")
            }
            return reply
        }
    }
}
