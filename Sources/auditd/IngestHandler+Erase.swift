import Archive
import AuditBase
import AuditWire
import Foundation
import NIOCore

/// ERASE (format-spec.md §5.4.3): the daemon erases a data subject, since only the process that
/// holds the log may append the record and destroy the key. Only the daemon's own user or root
/// may ask; one erasure runs at a time, off the event loop.
extension IngestHandler {
    /// Held while an erasure runs: a second one is told to retry, not queued.
    static let erasing = NSLock()

    func answerErase(_ f: Frame, context: ChannelHandlerContext) {
        guard allowsOperator(f, "erase", context: context) else { return }
        struct Request: Decodable {
            var org: String
            var subject: String
            var reason: String
            var authority: String
            var actor: String
        }
        guard let r = try? JSONDecoder().decode(Request.self, from: Data(f.body)) else {
            send(
                .error(
                    id: f.id, code: .malformedFrame,
                    message:
                        "an ERASE body is JSON {\"org\",\"subject\",\"reason\",\"authority\",\"actor\"}, all strings"),
                context: context)
            return
        }
        let ledger = shared.ledger
        let logger = shared.logger
        runExclusive(f, lock: Self.erasing, busy: "an erasure is running; retry when it ends", context: context) { id in
            let reply: Frame
            do {
                let done = try ledger.erase(
                    org: r.org, subject: r.subject, reason: r.reason, authority: r.authority, actor: r.actor,
                    via: "auditd"
                ) { try LegalHolds.refuseErasure(dir: ledger.directory, org: r.org) }
                let body: [String: Any] = [
                    "seq": done.record.seq, "org_seq": done.record.orgSeq, "hash": done.record.hash.hex,
                    "tag": done.tag.text, "erased": done.erased, "withheld": done.withheld,
                ]
                reply = Frame(
                    type: .erased, id: id, body: Array((try? JSONSerialization.data(withJSONObject: body)) ?? Data()))
                logger.notice("erased a data subject", metadata: ["org": "\(r.org)", "record": "\(done.record.seq)"])
            } catch let e as AuditError where e.code == .notFound || e.code == .invalidArgument {
                reply = .error(id: id, code: .invalidEntry, message: e.message)
            } catch {
                reply = .error(id: id, code: .unavailable, message: "\(error)")
            }
            return reply
        }
    }
}
