import AuditEntries
import AuditWire
import ChainIndex
import Foundation
import Logging
import NIOCore
import Replication

/// One writer connection (format-spec.md §9.1), event-loop-confined; its rules are in
/// `IngestConnectionState`, whose answers it carries out. It decodes frames, validates entries, batches what one read burst brought into one
/// append, and writes each ack once the ledger reports the entry durable. Bad frames get an
/// ERROR frame and the connection stays usable; only an unparseable stream, a burst of more
/// than `maxErrorsPerBurst` bad frames, or an idle or stalled peer closes it.
///
/// What a peer can make the daemon hold is bounded: at most one partial frame (64 KiB) is
/// buffered; reading pauses (`ReadGate`) while the peer does not read its replies, while it
/// has `maxInflight` entries awaiting acks, and while all connections together have
/// `InflightCounter.limit`.
final class IngestHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What the ack of a batched entry needs (no references: copied freely on every loop over
    /// a batch, while the entries themselves travel to the ledger once).
    struct Pending {
        var id: UInt64
        var idemKey: IdempotencyCache.Key?
        var started: ContinuousClock.Instant
    }

    let shared: IngestContext
    private let writer: Writer
    /// The peer's uid (ERASE is for the daemon's own user).
    var writerUID: UInt32 { writer.uid }
    /// Subjects' keys when the log protects personal fields.
    private let keys: SubjectKeys?
    private var parser = FrameParser()
    private var buffer: [UInt8] = []
    var batch: [Pending] = []
    var batchEntries: [PreparedEntry] = []
    /// When the bytes being handled were read: every entry of one read is stamped with it
    /// (`received_at`, and the start of its ack latency).
    private var readAt = (ms: ReceivedAt.now(), instant: ContinuousClock.now)
    var state: IngestConnectionState
    /// INCLUSION requests whose proofs are being computed off the event loop.
    var proofsInFlight = 0
    private var out: ByteBuffer?
    init(shared: IngestContext, writer: Writer) {
        self.shared = shared
        self.writer = writer
        keys = shared.ledger.subjectKeys
        state = IngestConnectionState(maxInflight: shared.maxInflight)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state.isOpen else { return }
        let bytes = unwrapInboundIn(data)
        stampRead()
        // Frames are read where NIO put them; only an incomplete one is kept in `buffer`.
        let items = bytes.withUnsafeReadableBytes { parser.parse($0, after: &buffer) }
        for item in items {
            switch item {
            case .frame(let f): handle(f, context: context)
            case .tooLarge(let id, let len):
                shared.metrics.rejected(.frameTooLarge)
                refuse(
                    .error(
                        id: id, code: .frameTooLarge,
                        message:
                            "frame of \(len) bytes exceeds the \(WireFormat.maxBody + WireFormat.minLength)-byte limit; the entry was not stored"
                    ), context: context)
            case .fatal(let why):
                shared.metrics.rejected(.malformedFrame)
                close(context, .error(id: 0, code: .malformedFrame, message: "\(why); closing the connection"))
                return
            }
            if !state.isOpen { return }
        }
        if buffer.capacity > 4 * WireFormat.maxBody && buffer.count < WireFormat.maxBody {
            // Give back what a large frame grew the buffer to.
            buffer = Array(buffer)
        }
    }

    /// Takes the clock for the bytes about to be handled.
    private func stampRead() { readAt = (ReceivedAt.now(), .now) }

    /// `e` is moved into the batch, not copied (a copy retains each string and array it holds).
    private func enqueue(_ e: consuming PreparedEntry, id: UInt64, idemKey: IdempotencyCache.Key?) {
        batch.append(Pending(id: id, idemKey: idemKey, started: readAt.instant))
        batchEntries.append(e)
    }

    /// Sends an error for a bad frame, and closes the connection after too many in one burst.
    func refuse(_ f: Frame, context: ChannelHandlerContext) {
        switch state.refused() {
        case .answer: send(f, context: context)
        case .close:
            close(
                context,
                .error(
                    id: 0, code: .malformedFrame,
                    message: "more than \(state.maxErrorsPerBurst) bad frames in one burst; closing the connection"))
        }
    }

    /// Sends a last error frame and closes.
    private func close(_ context: ChannelHandlerContext, _ last: Frame) {
        guard state.close() else { return }
        buffer = []
        send(last, context: context)
        flush(context: context)
        context.close(promise: nil)
    }

    func apply(_ action: ReadGate.Action, context: ChannelHandlerContext) {
        switch action {
        case .pause:
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        case .resume:
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
            context.read()
        case .none:
            break
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        apply(state.writability(context.channel.isWritable), context: context)
        context.fireChannelWritabilityChanged()
    }

    /// An idle peer is closed; so is one stalled in the middle of a frame. A peer waiting for
    /// acks of entries in flight is neither.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? IdleStateHandler.IdleStateEvent, e == .read,
            state.shouldCloseIdle(partialFrame: !buffer.isEmpty)
        {
            shared.metrics.rejected(.idle)
            close(
                context,
                .error(
                    id: 0, code: .unavailable,
                    message: buffer.isEmpty
                        ? "idle too long; closing the connection (reconnect when there is something to send)"
                        : "no complete frame for too long; closing the connection"))
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func handle(_ f: Frame, context: ChannelHandlerContext) {
        switch FrameType(rawValue: f.type) {
        case .append:
            let e: PreparedEntry
            do throws(EntryError) {
                e = try Entry.prepare(json: f.body, receivedAt: readAt.ms, writer: writer, keys: keys)
            } catch {
                shared.metrics.rejectedEntry(field: error.field)
                refuse(.error(id: f.id, code: .invalidEntry, message: error.description), context: context)
                return
            }
            guard let key = e.idempotencyKey else {
                enqueue(consume e, id: f.id, idemKey: nil)
                return
            }
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            guard shared.idempotency.isReady else {
                // Keys of the window are still being re-read after a restart: come back then.
                shared.idempotency.onReady {
                    loop.execute {
                        let (h, ctx) = bound.value
                        h.stampRead()
                        h.handle(f, context: ctx)
                        h.submit(context: ctx)
                        h.flush(context: ctx)
                    }
                }
                return
            }
            let k = IdempotencyCache.key(uid: writer.uid, org: e.org, key: key)
            let id = f.id
            switch shared.idempotency.lookup(
                k,
                waiter: { r in
                    loop.execute {
                        let (h, ctx) = bound.value
                        switch r {
                        case .success(let rc):
                            h.ackDuplicate(id: id, rc, context: ctx)
                        case .failure(let err):
                            h.send(
                                .error(
                                    id: id, code: .unavailable, message: "the original append failed (\(err)); retry"),
                                context: ctx)
                        }
                        h.flush(context: ctx)
                    }
                })
            {
            case .reserved: enqueue(consume e, id: f.id, idemKey: k)
            case .done(let rc):
                ackDuplicate(id: f.id, rc, context: context)
            case .waiting: break
            }
        case .ping:
            send(Frame(type: .pong, id: f.id), context: context)
        case .checkpoint:
            answerCheckpoint(f, context: context)
        case .inclusion:
            answerInclusion(f, context: context)
        case .erase:
            answerErase(f, context: context)
        case .rotateKey:
            answerRotateKey(f, context: context)
        default:
            shared.metrics.rejected(.unknownFrameType)
            refuse(
                .error(
                    id: f.id, code: .malformedFrame,
                    message: String(
                        format:
                            "unknown frame type 0x%02x (expected APPEND 0x01, PING 0x02, CHECKPOINT 0x03, INCLUSION 0x04, ERASE 0x05 or ROTATE-KEY 0x06)",
                        f.type)), context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        state.readComplete()
        submit(context: context)
        flush(context: context)
    }

    func send(_ f: Frame, context: ChannelHandlerContext) {
        let bytes = f.encoded
        if out == nil { out = context.channel.allocator.buffer(capacity: 4096) }
        out?.writeBytes(bytes)
    }

    /// Sends the ACK of the entry `r` stored for request `id`, written straight into the
    /// connection's buffer (the frame, its body and the hash's bytes were three allocations an
    /// ack). `expected` is how many acks are about to be sent, to size a new buffer.
    func sendAck(id: UInt64, _ r: Receipt, duplicate: Bool, expected: Int = 1, context: ChannelHandlerContext) {
        if out == nil {
            out = context.channel.allocator.buffer(capacity: max(1, expected) * Frame.ackFrameSize)
        }
        r.hash.withBytes { h in
            _ = out?.writeWithUnsafeMutableBytes(minimumWritableBytes: Frame.ackFrameSize) {
                Frame.writeAck(id: id, seq: r.seq, orgSeq: r.orgSeq, hash: h, duplicate: duplicate, into: $0)
            }
        }
    }

    func flush(context: ChannelHandlerContext) {
        guard let o = out, o.readableBytes > 0 else { return }
        out = nil
        context.writeAndFlush(wrapOutboundOut(o), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        shared.logger.debug("ingest connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}
