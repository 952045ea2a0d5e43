import AuditWire
import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// What ERASE and ROTATE-KEY share: only the daemon's own user or root may ask, one request of
/// a kind runs at a time (a second is told to retry, not queued), off the event loop.
extension IngestHandler {
    /// Whether the peer may send operator requests; if not, it is told so (`what` names the act).
    func allowsOperator(_ f: Frame, _ what: String, context: ChannelHandlerContext) -> Bool {
        guard writerUID == geteuid() || writerUID == 0 else {
            send(
                .error(
                    id: f.id, code: .forbidden,
                    message: "only auditd's own user (uid \(geteuid())) or root may \(what); writers may not"),
                context: context)
            return false
        }
        return true
    }

    /// Runs `work` on a thread of its own while `lock` is held, then sends the frame it made;
    /// when `lock` is already held, answers `busy` at once.
    func runExclusive(
        _ f: Frame, lock: NSLock, busy: String, context: ChannelHandlerContext,
        _ work: @escaping @Sendable (UInt64) -> Frame
    ) {
        guard lock.try() else {
            send(.error(id: f.id, code: .unavailable, message: busy), context: context)
            return
        }
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let id = f.id
        Thread.detachNewThread {
            let reply = work(id)
            lock.unlock()
            loop.execute {
                let (h, ctx) = bound.value
                h.send(reply, context: ctx)
                h.flush(context: ctx)
            }
        }
    }
}
