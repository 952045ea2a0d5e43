/// The ingest socket's framing (format-spec.md §9.1).
///
///      0               4     5                 13
///     +---------------+-----+-----------------+------------------------+
///     | length: u32   |type | id: u64         | body (length - 9 bytes)|
///     +---------------+-----+-----------------+------------------------+
///
/// Little-endian. `length` counts type, id and body. Requests: APPEND (body: one entry as JSON),
/// PING. Responses carry the request's id: ACK, PONG, ERROR. Many requests may be in flight on
/// one connection (pipelining); every request gets exactly one response.
public enum FrameType: UInt8, Sendable {
    /// Request: append the JSON entry in the body.
    case append = 0x01
    /// Request: liveness check.
    case ping = 0x02
    /// Request: the latest signed checkpoint, with a consistency proof from the tree size in
    /// the body (old:u64; 0 when the writer holds none).
    case checkpoint = 0x03
    /// Request: inclusion proofs of entries (receipts). Body: count:u16 seq:u64{count}.
    case inclusion = 0x04
    /// Request: erase a data subject's personal values (format-spec.md §5.4.3). Body: JSON
    /// `{"org","subject","reason","authority","actor"}`. Only the daemon's own user (or root)
    /// may send it.
    case erase = 0x05
    /// Request: hand the log's key on (format-spec.md §8.8). Body: JSON `{"key","grace",
    /// "actor"}` (`key`: the new signer key's text). Only the daemon's own user (or root).
    case rotateKey = 0x06
    /// Response: the entry is durable. Body: seq:u64 orgSeq:u64 hash[32] flags:u8.
    case ack = 0x81
    /// Response to PING.
    case pong = 0x82
    /// Response: the request was refused. Body: code:u16 message(UTF-8).
    case error = 0x83
    /// Response to CHECKPOINT. Body: noteLen:u32 note(UTF-8) count:u8 hash[32]{count}, then,
    /// once the log's key was handed on, k:u8 (len:u16 succession){k} (format-spec.md §8.8).
    case checkpointReply = 0x84
    /// Response to INCLUSION. Body: noteLen:u32 note count:u16 (n:u8 hash[32]{n}){count}.
    case inclusionReply = 0x85
    /// Response to ERASE. Body: JSON `{"seq","org_seq","hash","tag"}` (the erasure's record).
    case erased = 0x86
    /// Response to ROTATE-KEY. Body: JSON `{"seq","handover","grace_end","old_key","new_key",
    /// "statement"}`.
    case keyRotated = 0x87
}

/// Error codes of an ERROR frame.
public enum WireErrorCode: UInt16, Sendable, CustomStringConvertible {
    /// The entry failed validation; the message names the field. Do not retry unchanged.
    case invalidEntry = 1
    /// The frame could not be parsed (unknown type, bad length). The connection may be closed.
    case malformedFrame = 2
    /// The frame is larger than the server accepts.
    case frameTooLarge = 3
    /// The log cannot accept writes right now (shutting down, storage failure). Retry later.
    case unavailable = 4
    /// The peer is not an allowed writer.
    case forbidden = 5

    /// Name.
    public var description: String {
        switch self {
        case .invalidEntry: return "invalid entry"
        case .malformedFrame: return "malformed frame"
        case .frameTooLarge: return "frame too large"
        case .unavailable: return "unavailable"
        case .forbidden: return "forbidden"
        }
    }
}

/// Sizes and limits of the framing.
public enum WireFormat {
    /// length + type + id.
    public static let headerSize = 4 + 1 + 8
    /// type + id, counted in `length`.
    public static let minLength = 1 + 8
    /// Largest body the server accepts (an entry is at most 64 KiB of JSON).
    public static let maxBody = 64 << 10
    /// Frames declaring more than this are not skipped but end the connection.
    public static let maxSkippable = 16 << 20
    /// seq + orgSeq + hash + flags.
    public static let ackBodySize = 8 + 8 + 32 + 1
    /// ACK flag: the entry was already in the log (an idempotent retry).
    public static let flagDuplicate: UInt8 = 1
}

/// A whole frame.
public struct Frame: Sendable, Equatable {
    /// The frame type byte (kept raw so an unknown type can be reported).
    public var type: UInt8
    /// The request id, echoed in the response.
    public var id: UInt64
    /// The body.
    public var body: [UInt8]

    /// A frame.
    public init(type: FrameType, id: UInt64, body: [UInt8] = []) {
        self.type = type.rawValue
        self.id = id
        self.body = body
    }

    /// A frame with a raw type byte.
    public init(rawType: UInt8, id: UInt64, body: [UInt8]) {
        self.type = rawType
        self.id = id
        self.body = body
    }

    /// The bytes on the wire.
    public var encoded: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(WireFormat.headerSize + body.count)
        append(to: &out)
        return out
    }

    /// Appends the bytes on the wire to `out` (several frames in one buffer, one write).
    public func append(to out: inout [UInt8]) {
        let len = UInt32(WireFormat.minLength + body.count)
        for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: len >> (UInt32(i) * 8))) }
        out.append(type)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: id >> (UInt64(i) * 8))) }
        out.append(contentsOf: body)
    }

    /// An ACK frame.
    public static func ack(id: UInt64, seq: UInt64, orgSeq: UInt64, hash: [UInt8], duplicate: Bool) -> Frame {
        var wire = [UInt8](repeating: 0, count: ackFrameSize)
        hash.withUnsafeBytes { h in
            wire.withUnsafeMutableBytes {
                _ = writeAck(id: id, seq: seq, orgSeq: orgSeq, hash: h, duplicate: duplicate, into: $0)
            }
        }
        return Frame(type: .ack, id: id, body: Array(wire[WireFormat.headerSize...]))
    }

    /// The bytes of a whole ACK frame on the wire.
    public static let ackFrameSize = WireFormat.headerSize + WireFormat.ackBodySize

    /// Writes an ACK frame, header and body, at the start of `out` (at least `ackFrameSize`
    /// bytes; `hash` is its first 32 bytes, zero-padded when shorter) and returns its size: the
    /// daemon's acks, written into the connection's buffer with no allocation each.
    public static func writeAck(
        id: UInt64, seq: UInt64, orgSeq: UInt64, hash: UnsafeRawBufferPointer, duplicate: Bool,
        into out: UnsafeMutableRawBufferPointer
    ) -> Int {
        guard out.count >= ackFrameSize else { return 0 }
        out.storeBytes(of: UInt32(WireFormat.minLength + WireFormat.ackBodySize).littleEndian, as: UInt32.self)
        out[4] = FrameType.ack.rawValue
        out.storeBytes(of: id.littleEndian, toByteOffset: 5, as: UInt64.self)
        out.storeBytes(of: seq.littleEndian, toByteOffset: 13, as: UInt64.self)
        out.storeBytes(of: orgSeq.littleEndian, toByteOffset: 21, as: UInt64.self)
        let n = min(32, hash.count)
        for i in 0..<32 { out[29 + i] = i < n ? hash[i] : 0 }
        out[61] = duplicate ? WireFormat.flagDuplicate : 0
        return ackFrameSize
    }

    /// An ERROR frame.
    public static func error(id: UInt64, code: WireErrorCode, message: String) -> Frame {
        let c = code.rawValue
        return Frame(type: .error, id: id, body: [UInt8(c & 0xff), UInt8(c >> 8)] + Array(message.utf8))
    }
}

/// A parsed ACK body.
public struct Ack: Sendable, Equatable {
    /// The entry's sequence number.
    public var seq: UInt64
    /// Its position in its org's chain.
    public var orgSeq: UInt64
    /// Its hash (the Merkle leaf hash), 32 bytes.
    public var hash: [UInt8]
    /// True if the entry was already in the log (an idempotent retry).
    public var duplicate: Bool

    /// Parses an ACK body.
    public init?(body: [UInt8]) {
        guard body.count == WireFormat.ackBodySize else { return nil }
        var s: UInt64 = 0
        var o: UInt64 = 0
        for i in 0..<8 { s |= UInt64(body[i]) << (UInt64(i) * 8) }
        for i in 0..<8 { o |= UInt64(body[8 + i]) << (UInt64(i) * 8) }
        seq = s
        orgSeq = o
        hash = Array(body[16..<48])
        duplicate = body[48] & WireFormat.flagDuplicate != 0
    }
}

/// A parsed ERROR body.
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The code (raw, so unknown codes survive).
    public var code: UInt16
    /// What the server said.
    public var message: String

    /// Parses an ERROR body.
    public init(body: [UInt8]) {
        code = body.count >= 2 ? UInt16(body[0]) | UInt16(body[1]) << 8 : 0
        message = String(decoding: body.dropFirst(2), as: UTF8.self)
    }

    /// An error.
    public init(code: WireErrorCode, message: String) {
        self.code = code.rawValue
        self.message = message
    }

    /// `code (name): message`.
    public var description: String {
        "\(WireErrorCode(rawValue: code).map(\.description) ?? "error \(code)"): \(message)"
    }
}

/// Incremental frame parsing for any transport; never traps on hostile input.
public struct FrameParser: Sendable {
    /// What the parser found at the front of the buffer.
    public enum Item: Sendable, Equatable {
        /// A whole frame.
        case frame(Frame)
        /// A frame whose body exceeds `maxBody`; its bytes are being skipped.
        case tooLarge(id: UInt64, length: UInt32)
        /// The stream cannot be parsed further (length below the minimum, or too large to skip).
        case fatal(String)
    }

    private var skipping: Int = 0
    private let maxBody: Int

    /// A parser accepting bodies up to `maxBody`.
    public init(maxBody: Int = WireFormat.maxBody) { self.maxBody = maxBody }

    /// Takes what it can from the front of `buffer` and returns the items found; incomplete
    /// frames stay in the buffer.
    public mutating func parse(_ buffer: inout [UInt8]) -> [Item] {
        let (items, used) = buffer.withUnsafeBytes { scan($0) }
        if used == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 4 * WireFormat.maxBody)
        } else if used > 0 {
            buffer.removeSubrange(0..<used)
        }
        return items
    }

    /// Parses `bytes` as they follow `leftover` (the incomplete frame an earlier call kept),
    /// and keeps what is incomplete now in `leftover`. When nothing was left over, the frames
    /// are read from `bytes` where they lie (a transport's read buffer), without copying them
    /// into `leftover` first.
    public mutating func parse(_ bytes: UnsafeRawBufferPointer, after leftover: inout [UInt8]) -> [Item] {
        guard leftover.isEmpty else {
            leftover.append(contentsOf: bytes)
            return parse(&leftover)
        }
        let (items, used) = scan(bytes)
        if case .fatal = items.last { return items }
        if used < bytes.count { leftover.append(contentsOf: bytes[used...]) }
        return items
    }

    /// The items at the front of `b`, and how many of its bytes they took (all of them after a
    /// fatal item: nothing more can be read).
    private mutating func scan(_ b: UnsafeRawBufferPointer) -> ([Item], Int) {
        var items: [Item] = []
        var i = 0
        let n = b.count
        while true {
            if skipping > 0 {
                let k = min(skipping, n - i)
                skipping -= k
                i += k
                if skipping > 0 { break }
            }
            guard n - i >= WireFormat.headerSize else { break }
            var len: UInt32 = 0
            for k in 0..<4 { len |= UInt32(b[i + k]) << (UInt32(k) * 8) }
            guard len >= UInt32(WireFormat.minLength) else {
                items.append(.fatal("frame length \(len) is below the minimum of \(WireFormat.minLength)"))
                return (items, n)
            }
            let type = b[i + 4]
            var id: UInt64 = 0
            for k in 0..<8 { id |= UInt64(b[i + 5 + k]) << (UInt64(k) * 8) }
            let bodyLen = Int(len) - WireFormat.minLength
            if bodyLen > maxBody {
                guard Int(len) <= WireFormat.maxSkippable else {
                    items.append(.fatal("frame of \(len) bytes is far above the \(maxBody)-byte limit"))
                    return (items, n)
                }
                items.append(.tooLarge(id: id, length: len))
                i += WireFormat.headerSize
                skipping = bodyLen
                continue
            }
            guard n - i >= WireFormat.headerSize + bodyLen else { break }
            let start = i + WireFormat.headerSize
            items.append(.frame(Frame(rawType: type, id: id, body: Array(b[start..<(start + bodyLen)]))))
            i = start + bodyLen
        }
        return (items, i)
    }
}

/// The body of a CHECKPOINT request: the tree size the writer holds (u64; 0 for none) and,
/// optionally, a flags byte (bit 0: the newest cosigned checkpoint instead of the latest;
/// bit 1: the log's key successions too, format-spec.md §8.8).
public struct CheckpointRequest: Sendable, Equatable {
    /// The tree size the writer holds.
    public var old: UInt64
    /// Whether the newest cosigned checkpoint is asked for.
    public var cosigned: Bool
    /// Whether the reply should carry the log's key successions (a writer that follows them).
    public var successions: Bool

    /// A request.
    public init(old: UInt64, cosigned: Bool = false, successions: Bool = false) {
        self.old = old
        self.cosigned = cosigned
        self.successions = successions
    }

    /// Parses a request body; nil when it is malformed.
    public init?(body: [UInt8]) {
        guard body.count == 8 || (body.count == 9 && body[8] <= 3) else { return nil }
        old = body.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let flags = body.count == 9 ? body[8] : 0
        cosigned = flags & 1 != 0
        successions = flags & 2 != 0
    }

    /// The request body.
    public var body: [UInt8] {
        var b = (0..<8).map { UInt8(truncatingIfNeeded: old >> (8 * UInt64($0))) }
        let flags: UInt8 = (cosigned ? 1 : 0) | (successions ? 2 : 0)
        if flags != 0 { b.append(flags) }
        return b
    }
}

/// The body of a CHECKPOINT reply: the log's latest signed checkpoint (a signed note) and the
/// RFC 9162 consistency proof from the size the writer asked from (empty when that size is 0,
/// or not below the checkpoint's).
public struct CheckpointReply: Sendable, Equatable {
    /// The signed checkpoint note.
    public var note: String
    /// The consistency proof's hashes, 32 bytes each.
    public var proof: [[UInt8]]
    /// The statements handing the log's key on (format-spec.md §8.8), oldest first: a writer
    /// follows them from the key it holds. Sent only when there are any.
    public var successions: [String]

    /// A reply.
    public init(note: String, proof: [[UInt8]], successions: [String] = []) {
        self.note = note
        self.proof = proof
        self.successions = successions
    }

    /// Parses a reply body; nil when it is malformed.
    public init?(body: [UInt8]) {
        guard body.count >= 5 else { return nil }
        let n = Int(body[0]) | Int(body[1]) << 8 | Int(body[2]) << 16 | Int(body[3]) << 24
        guard n <= body.count - 5 else { return nil }
        note = String(decoding: body[4..<(4 + n)], as: UTF8.self)
        let count = Int(body[4 + n])
        var at = 5 + n + 32 * count
        guard body.count >= at, count <= 64 else { return nil }
        proof = (0..<count).map { Array(body[(5 + n + 32 * $0)..<(5 + n + 32 * ($0 + 1))]) }
        successions = []
        guard body.count > at else { return }
        // count:u8 (len:u16 note){count}
        let k = Int(body[at])
        at += 1
        for _ in 0..<k {
            guard body.count - at >= 2 else { return nil }
            let len = Int(body[at]) | Int(body[at + 1]) << 8
            at += 2
            guard body.count - at >= len else { return nil }
            successions.append(String(decoding: body[at..<(at + len)], as: UTF8.self))
            at += len
        }
        guard at == body.count else { return nil }
    }

    /// The reply body.
    public var body: [UInt8] {
        let n = note.utf8.count
        var b: [UInt8] = [UInt8(n & 0xff), UInt8((n >> 8) & 0xff), UInt8((n >> 16) & 0xff), UInt8((n >> 24) & 0xff)]
        b += Array(note.utf8)
        b.append(UInt8(proof.count))
        for h in proof { b += h }
        let notes = successions.suffix(255).filter { $0.utf8.count <= 0xffff }
        guard !notes.isEmpty else { return b }
        b.append(UInt8(notes.count))
        for s in notes { b += [UInt8(s.utf8.count & 0xff), UInt8(s.utf8.count >> 8)] + Array(s.utf8) }
        return b
    }
}

/// The body of an INCLUSION reply: one signed checkpoint covering every requested entry, and
/// each entry's RFC 9162 inclusion proof in it, in request order.
public struct InclusionReply: Sendable, Equatable {
    /// Most entries one INCLUSION request may name.
    public static let maxEntries = 1024
    /// The signed checkpoint note.
    public var note: String
    /// Per requested entry, its proof's hashes (32 bytes each).
    public var proofs: [[[UInt8]]]

    /// A reply.
    public init(note: String, proofs: [[[UInt8]]]) {
        self.note = note
        self.proofs = proofs
    }

    /// The request body naming `seqs`.
    public static func request(_ seqs: [UInt64]) -> [UInt8] {
        var b: [UInt8] = [UInt8(seqs.count & 0xff), UInt8(seqs.count >> 8)]
        for s in seqs { for k in 0..<8 { b.append(UInt8(truncatingIfNeeded: s >> (8 * UInt64(k)))) } }
        return b
    }

    /// The sequence numbers a request body names; nil when it is malformed.
    public static func seqs(_ body: [UInt8]) -> [UInt64]? {
        guard body.count >= 2 else { return nil }
        let n = Int(body[0]) | Int(body[1]) << 8
        guard n >= 1, n <= maxEntries, body.count == 2 + 8 * n else { return nil }
        var out: [UInt64] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(body[2 + 8 * i + k]) << UInt64(8 * k) }
            out.append(v)
        }
        return out
    }

    /// Parses a reply body; nil when it is malformed.
    public init?(body: [UInt8]) {
        guard body.count >= 6 else { return nil }
        let n = Int(body[0]) | Int(body[1]) << 8 | Int(body[2]) << 16 | Int(body[3]) << 24
        guard n <= body.count - 6 else { return nil }
        note = String(decoding: body[4..<(4 + n)], as: UTF8.self)
        var at = 4 + n
        let count = Int(body[at]) | Int(body[at + 1]) << 8
        at += 2
        var out: [[[UInt8]]] = []
        for _ in 0..<count {
            guard at < body.count else { return nil }
            let k = Int(body[at])
            at += 1
            guard k <= 64, body.count - at >= 32 * k else { return nil }
            out.append((0..<k).map { Array(body[(at + 32 * $0)..<(at + 32 * ($0 + 1))]) })
            at += 32 * k
        }
        guard at == body.count else { return nil }
        proofs = out
    }

    /// The reply body.
    public var body: [UInt8] {
        let n = note.utf8.count
        var b: [UInt8] = [UInt8(n & 0xff), UInt8((n >> 8) & 0xff), UInt8((n >> 16) & 0xff), UInt8((n >> 24) & 0xff)]
        b += Array(note.utf8)
        b += [UInt8(proofs.count & 0xff), UInt8(proofs.count >> 8)]
        for p in proofs {
            b.append(UInt8(p.count))
            for h in p { b += h }
        }
        return b
    }
}
