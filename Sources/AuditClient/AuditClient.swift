import AuditWire
import Foundation
import NIOCore
import NIOPosix

/// A client of auditd's ingest socket, for services to embed (format-spec.md §9.1).
///
///     let client = try await AuditClient.connect(socketPath: "/run/auditd.sock")
///     let ack = try await client.append(Array(json.utf8))      // returns once durable
///     let acks = try await client.append(batch: entries)        // pipelined
///
/// Every request gets exactly one response, matched by id, so many may be in flight. An entry
/// with an `idempotency_key` may be retried (after a lost connection, say): the daemon answers
/// a retry with the original ack (`duplicate` set) instead of storing it twice.
public final class AuditClient: Sendable {
    let channel: Channel
    private let ids = IDCounter()
    private let ownsGroup: EventLoopGroup?

    init(channel: Channel, ownsGroup: EventLoopGroup?) {
        self.channel = channel
        self.ownsGroup = ownsGroup
    }

    /// Connects to the daemon's socket.
    public static func connect(socketPath: String, group: EventLoopGroup? = nil) async throws -> AuditClient {
        let g = group ?? MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let ch = try await ClientBootstrap(group: g)
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(ClientHandler()) }
                }
                .connect(unixDomainSocketPath: socketPath).get()
            return AuditClient(channel: ch, ownsGroup: group == nil ? g : nil)
        } catch {
            if group == nil { try? await g.shutdownGracefully() }
            throw AuditClientError.cannotConnect(path: socketPath, reason: "\(error)")
        }
    }

    /// Appends one entry (JSON) and returns its ack once it is durable; throws `WireError` if refused.
    public func append(_ json: [UInt8]) async throws -> Ack {
        guard let r = try await append(batch: [json]).first else { throw AuditClientError.connectionClosed }
        return try r.get()
    }

    /// Appends entries pipelined (one write, one flush) and returns each one's ack or refusal.
    public func append(batch: [[UInt8]]) async throws -> [Result<Ack, WireError>] {
        guard !batch.isEmpty else { return [] }
        let first = ids.next(count: batch.count)
        let frames = batch.enumerated().map { Frame(type: .append, id: first + UInt64($0.offset), body: $0.element) }
        return try await send(frames).get().map(Self.decode)
    }

    /// Round trip without appending anything.
    public func ping() async throws {
        let f = try await send(Frame(type: .ping, id: ids.next())).get()
        guard f.type == FrameType.pong.rawValue else {
            throw Self.decode(f).failure ?? WireError(code: .malformedFrame, message: "unexpected reply")
        }
    }

    /// The log's latest signed checkpoint and the consistency proof from tree size `old` (the
    /// checkpoint the caller holds; 0 for none). The caller checks both (a writer that keeps
    /// the checkpoints it verified detects a rollback or a fork of the log).
    /// With `cosigned`, the newest checkpoint with its quorum of witness cosignatures (their
    /// lines appended to the note) instead of the latest. With `successions`, the reply
    /// carries the statements that handed the log's key on (format-spec.md §8.8).
    public func checkpoint(
        since old: UInt64, cosigned: Bool = false, successions: Bool = true
    ) async throws
        -> CheckpointReply
    {
        let body = CheckpointRequest(old: old, cosigned: cosigned, successions: successions).body
        let f = try await send(Frame(type: .checkpoint, id: ids.next(), body: body)).get()
        guard f.type == FrameType.checkpointReply.rawValue, let r = CheckpointReply(body: f.body) else {
            throw Self.decode(f).failure ?? WireError(code: .malformedFrame, message: "malformed CHECKPOINT reply")
        }
        return r
    }

    /// One signed checkpoint covering entries `seqs` (at most `InclusionReply.maxEntries`) and
    /// each one's inclusion proof in it: receipts for a whole batch in one round trip.
    public func inclusion(_ seqs: [UInt64]) async throws -> InclusionReply {
        let f = try await send(Frame(type: .inclusion, id: ids.next(), body: InclusionReply.request(seqs)))
            .get()
        guard f.type == FrameType.inclusionReply.rawValue, let r = InclusionReply(body: f.body),
            r.proofs.count == seqs.count
        else {
            throw Self.decode(f).failure ?? WireError(code: .malformedFrame, message: "malformed INCLUSION reply")
        }
        return r
    }

    /// Asks the daemon to erase `subject`'s personal values in `org` (format-spec.md §5.4.3);
    /// returns the reply's JSON: the record's `seq`, `org_seq`, `hash` and the subject `tag`.
    public func erase(
        org: String, subject: String, reason: String, authority: String, actor: String
    ) async throws
        -> [String: Any]
    {
        let body = try JSONSerialization.data(
            withJSONObject: ["org": org, "subject": subject, "reason": reason, "authority": authority, "actor": actor])
        let f = try await send(Frame(type: .erase, id: ids.next(), body: Array(body))).get()
        guard f.type == FrameType.erased.rawValue,
            let r = try? JSONSerialization.jsonObject(with: Data(f.body)) as? [String: Any]
        else {
            throw Self.decode(f).failure ?? WireError(code: .malformedFrame, message: "malformed ERASE reply")
        }
        return r
    }

    /// Asks the daemon to hand the log's key on to `key` (a signer key's text), the old key
    /// co-signing for `grace` entries (format-spec.md §8.8). Returns the daemon's answer: `seq`,
    /// `handover`, `grace_end`, `old_key`, `new_key`, `statement`.
    public func rotateKey(key: String, grace: UInt64, actor: String) async throws -> [String: Any] {
        let body = try JSONSerialization.data(withJSONObject: ["key": key, "grace": grace, "actor": actor])
        let f = try await send(Frame(type: .rotateKey, id: ids.next(), body: Array(body))).get()
        guard f.type == FrameType.keyRotated.rawValue,
            let r = try? JSONSerialization.jsonObject(with: Data(f.body)) as? [String: Any]
        else {
            throw Self.decode(f).failure ?? WireError(code: .malformedFrame, message: "malformed ROTATE-KEY reply")
        }
        return r
    }

    /// Writes one request (`send(_:)` of requests).
    private func send(_ frame: Frame) -> EventLoopFuture<Frame> {
        send([frame]).flatMapThrowing { replies in
            guard let r = replies.first else { throw AuditClientError.connectionClosed }
            return r
        }
    }

    /// Writes requests in one buffer and flushes once, in one task on the channel's loop (from
    /// another thread each `write` and the `flush` would be a task of its own, each maybe
    /// waking the loop). One future answers them all, in order, once every response is in:
    /// a caller awaiting a batch wakes once, not once an entry (each wake is a hop between
    /// the loop and the caller's thread). It fails if the write fails (a connection that is
    /// already closed never reaches the handler, so nothing else would complete it).
    private func send(_ frames: [Frame]) -> EventLoopFuture<[Frame]> {
        let loop = channel.eventLoop
        let channel = channel
        let promise = loop.makePromise(of: [Frame].self)
        loop.execute {
            let written = loop.makePromise(of: Void.self)
            written.futureResult.whenFailure { _ in promise.fail(AuditClientError.connectionClosed) }
            channel.writeAndFlush(Outgoing(frames: frames, promise: promise), promise: written)
        }
        return promise.futureResult
    }

    /// Closes the connection.
    public func close() async {
        try? await channel.close()
        if let g = ownsGroup { try? await g.shutdownGracefully() }
    }

    static func decode(_ f: Frame) -> Result<Ack, WireError> {
        switch FrameType(rawValue: f.type) {
        case .ack:
            guard let a = Ack(body: f.body) else {
                return .failure(WireError(code: .malformedFrame, message: "short ACK"))
            }
            return .success(a)
        case .error:
            return .failure(WireError(body: f.body))
        default:
            return .failure(WireError(code: .malformedFrame, message: "unexpected frame type \(f.type)"))
        }
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let e) = self { return e }
        return nil
    }
}

/// Connection-level failures.
public enum AuditClientError: Error, CustomStringConvertible, Sendable {
    /// The socket could not be reached.
    case cannotConnect(path: String, reason: String)
    /// The connection closed before the response arrived: the entry may or may not be stored;
    /// retry it with the same idempotency key.
    case connectionClosed

    /// In words.
    public var description: String {
        switch self {
        case .cannotConnect(let p, let r):
            return
                "cannot connect to the audit socket \(p) (\(r)); is auditd running, and may this user open the socket?"
        case .connectionClosed:
            return "the connection closed before the daemon answered; retry with the same idempotency key"
        }
    }
}

struct Outgoing: Sendable {
    var frames: [Frame]
    var promise: EventLoopPromise<[Frame]>
}

final class IDCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n: UInt64 = 0
    func next() -> UInt64 { next(count: 1) }
    /// The first of `count` consecutive ids.
    func next(count: Int) -> UInt64 {
        lock.withLock {
            let first = n + 1
            n += UInt64(count)
            return first
        }
    }
}

/// Matches responses to requests by id; fails what is outstanding if the connection drops.
final class ClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Outgoing
    typealias OutboundOut = ByteBuffer

    /// The requests of one write, answered together once the last response is in.
    private final class Batch {
        var replies: [Frame]
        var left: Int
        let promise: EventLoopPromise<[Frame]>
        init(count: Int, promise: EventLoopPromise<[Frame]>) {
            replies = Array(repeating: Frame(rawType: 0, id: 0, body: []), count: count)
            left = count
            self.promise = promise
        }
    }

    private var parser = FrameParser(maxBody: 1 << 20)
    private var buffer: [UInt8] = []
    private var waiting: [UInt64: (batch: Batch, index: Int)] = [:]

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let o = unwrapOutboundIn(data)
        guard !o.frames.isEmpty else {
            o.promise.succeed([])
            promise?.succeed()
            return
        }
        let batch = Batch(count: o.frames.count, promise: o.promise)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(o.frames.reduce(0) { $0 + WireFormat.headerSize + $1.body.count })
        for (i, f) in o.frames.enumerated() {
            waiting[f.id] = (batch, i)
            f.append(to: &bytes)
        }
        context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        if let bytes = b.readBytes(length: b.readableBytes) { buffer.append(contentsOf: bytes) }
        for item in parser.parse(&buffer) {
            switch item {
            case .frame(let f):
                if let (batch, i) = waiting.removeValue(forKey: f.id) {
                    batch.replies[i] = f
                    batch.left -= 1
                    if batch.left == 0 { batch.promise.succeed(batch.replies) }
                } else if f.id == 0 {
                    failAll(WireError(body: f.body))
                }
            case .tooLarge, .fatal:
                failAll(AuditClientError.connectionClosed)
                context.close(promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(AuditClientError.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failAll(error)
        context.close(promise: nil)
    }

    /// Fails every batch still waiting, each once.
    private func failAll(_ e: Error) {
        let w = waiting
        waiting.removeAll()
        var failed = Set<ObjectIdentifier>()
        for (_, (batch, _)) in w where failed.insert(ObjectIdentifier(batch)).inserted { batch.promise.fail(e) }
    }
}
