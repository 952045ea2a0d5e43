import AuditWire
import ChainIndex
import Foundation
import Logging
import NIOCore
import Replication

/// Shared by every connection.
struct IngestContext: Sendable {
    let ledger: Ledger
    let idempotency: IdempotencyCache
    let metrics: DaemonMetrics
    let maxInflight: Int
    let logger: Logger
    let drain: InflightCounter
    /// The witnesses, when configured: CHECKPOINT may ask for the newest cosigned checkpoint.
    let witnessing: Witnessing?
    /// Which checkpoints writers may be handed, and the bucket in replicated mode.
    let publication: Publication
    /// When an ack is sent.
    let ackMode: AckMode
    /// How long a writer waits for the bucket in replicated mode.
    let replicationWait: Duration
    /// The signing key's file: a handover replaces it (`KeyFile.handOver`).
    let keyPath: String
}

/// Writes refused in replicated mode while the store cannot be reached.
struct ReplicationRefusal: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Answers a peer that may not be served (not an allowed writer, or one connection too many)
/// with one ERROR frame, then closes.
final class ForbiddenHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let code: WireErrorCode
    let message: String

    init(code: WireErrorCode = .forbidden, message: String) {
        self.code = code
        self.message = message
    }

    func channelActive(context: ChannelHandlerContext) {
        var b = context.channel.allocator.buffer(capacity: 128)
        b.writeBytes(Frame.error(id: 0, code: code, message: message).encoded)
        context.writeAndFlush(wrapOutboundOut(b)).whenComplete { _ in context.close(promise: nil) }
    }
}
