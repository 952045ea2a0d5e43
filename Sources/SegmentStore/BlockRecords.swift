import AuditBase

/// A block's records laid out as they are stored before compression (format-spec.md §2.2:
/// `record := seqDelta key len bytes`), written as they come: a record's bytes go straight
/// into the block, with no array of their own. The one writer of that layout: `Block.encode`
/// of records read back and the group commit's records alike.
public struct BlockRecords: Sendable {
    /// The records' bytes, as compression takes them.
    private(set) var raw: ByteWriter
    /// How many records.
    public private(set) var count = 0
    /// The header's `firstSeq`, which the first record's delta counts from: the smallest
    /// sequence number, declared before the records come.
    let firstSeq: UInt64
    /// The largest sequence number so far, and the smallest.
    private(set) var lastSeq: UInt64
    private var least: UInt64
    /// The previous record's sequence number.
    private var prev: UInt64
    private var key0: UInt64 = 0
    private var uniform = true
    /// Whether each record's sequence number follows the one before it.
    private(set) var consecutive = true
    /// The records' payload bytes, and the largest payload.
    private(set) var payloadBytes = 0
    private(set) var largestPayload = 0
    /// A record whose writer wrote another number of bytes than it announced: the layout
    /// is broken from there, and the store refuses the block.
    private var miswritten = false

    /// An empty block whose smallest sequence number will be `firstSeq`, with room for
    /// `capacity` bytes of records.
    public init(firstSeq: UInt64, capacity: Int = 0) {
        raw = ByteWriter(capacity: capacity)
        self.firstSeq = firstSeq
        lastSeq = firstSeq
        least = .max
        prev = firstSeq
    }

    /// Why these records cannot make a block, or nil: a writer broke the layout, or the
    /// smallest sequence number is not the one declared.
    var flaw: String? {
        if miswritten { return "a record's bytes are not as many as its length says" }
        if count > 0, least != firstSeq { return "the smallest sequence number \(least) is not the first, \(firstSeq)" }
        return nil
    }

    /// True when no record has been added.
    public var isEmpty: Bool { count == 0 }
    /// The bytes the records take before compression.
    public var byteCount: Int { raw.bytes.count }
    /// The key every record shares, or 0 when they differ (the header's `key`).
    var key: UInt64 { uniform ? key0 : 0 }

    /// Adds the record `seq` with `key` and `payload`.
    public mutating func append(seq: UInt64, key: UInt64, payload: [UInt8]) {
        append(seq: seq, key: key, payloadCount: payload.count) { $0.write(payload) }
    }

    /// Adds the record `seq` with `key` and a payload of `payloadCount` bytes, which `write`
    /// appends to the writer it is given: one copy of them, into the block.
    public mutating func append(
        seq: UInt64, key: UInt64, payloadCount: Int, _ write: (inout ByteWriter) -> Void
    ) {
        if count == 0 {
            if seq != firstSeq { consecutive = false }
            key0 = key
        } else {
            if seq != prev &+ 1 { consecutive = false }
            if key != key0 { uniform = false }
        }
        least = min(least, seq)
        lastSeq = max(lastSeq, seq)
        raw.writeSignedVarint(Int64(bitPattern: seq &- prev))
        prev = seq
        raw.write(key)
        raw.writeVarint(UInt64(payloadCount))
        let start = raw.bytes.count
        write(&raw)
        if raw.bytes.count - start != payloadCount { miswritten = true }
        count += 1
        payloadBytes += payloadCount
        largestPayload = max(largestPayload, payloadCount)
    }
}
