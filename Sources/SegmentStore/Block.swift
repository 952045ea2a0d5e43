import AuditBase

/// A block: the unit of compression and checksumming in every segment (format-spec.md §2.2).
///
///     block  := header payload
///     header := "BLK1" crc32c:u32 payloadLen:u32 rawLen:u32 count:u32 firstSeq:u64 lastSeq:u64 key:u64
///     payload:= zstd(record*)           (rawLen bytes once expanded)
///     record := seqDelta:zigzag-varint key:u64 len:varint bytes[len]
///
/// `crc32c` covers the header after the crc field and the payload. `seqDelta` is relative to the
/// previous record in the block (the first record's to `firstSeq`).

/// One record as the caller hands it to the store: an opaque grouping key and bytes.
public struct StoreRecord: Sendable, Equatable {
    /// Records with the same key are clustered together when a segment is sealed.
    public var key: UInt64
    /// The record's bytes, opaque to the store.
    public var payload: [UInt8]

    /// A record with `key` and `payload`.
    public init(key: UInt64, payload: [UInt8]) {
        self.key = key
        self.payload = payload
    }
}

/// Whether a block, given its decompressed bytes, can hold a record its reader wants: a
/// search's test over a whole block before any record is parsed (a text search asks whether
/// the text is anywhere in it). It must never say no for a block holding a wanted record.
public typealias BlockFilter = (UnsafeRawBufferPointer) -> Bool

/// A record read back, with the sequence number the store gave it.
public struct StoredRecord: Sendable, Equatable {
    /// Its sequence number.
    public var seq: UInt64
    /// Its grouping key.
    public var key: UInt64
    /// Its bytes.
    public var payload: [UInt8]

    /// A record read back.
    public init(seq: UInt64, key: UInt64, payload: [UInt8]) {
        self.seq = seq
        self.key = key
        self.payload = payload
    }
}

/// The fixed-size header of a block.
public struct BlockHeader: Sendable, Equatable {
    /// Checksum of everything after this field, payload included.
    public var crc: UInt32
    /// Compressed payload length.
    public var payloadLength: UInt32
    /// Decompressed payload length.
    public var rawLength: UInt32
    /// Number of records.
    public var count: UInt32
    /// Smallest sequence number in the block.
    public var firstSeq: UInt64
    /// Largest sequence number in the block.
    public var lastSeq: UInt64
    /// The grouping key every record shares, or 0 when they differ.
    public var key: UInt64

    /// The header and payload's total length on disk.
    public var totalLength: Int { SegmentFormat.blockHeaderSize + Int(payloadLength) }

    /// Parses a header, checking the magic and that the sizes are sane; the checksum is
    /// checked by `Block.decode` once the payload has been read.
    public static func parse(_ bytes: ArraySlice<UInt8>) throws(BlockError) -> BlockHeader {
        guard bytes.count >= SegmentFormat.blockHeaderSize else { throw .short }
        var r = ByteReader(Array(bytes.prefix(SegmentFormat.blockHeaderSize)))
        do {
            guard Array(try r.read(count: 4)) == SegmentFormat.blockMagic else { throw BlockError.badMagic }
            let h = BlockHeader(
                crc: try r.readU32(), payloadLength: try r.readU32(), rawLength: try r.readU32(),
                count: try r.readU32(), firstSeq: try r.readU64(), lastSeq: try r.readU64(), key: try r.readU64())
            guard Int(h.rawLength) <= SegmentFormat.maxBlockRawSize,
                Int(h.payloadLength) <= SegmentFormat.maxBlockRawSize + 4096,
                h.count > 0, Int(h.count) <= Int(h.rawLength) / SegmentFormat.minRecordSize, h.lastSeq >= h.firstSeq,
                h.lastSeq < SegmentFormat.maxSeq, h.lastSeq - h.firstSeq < (1 << 40)
            else { throw BlockError.badHeader }
            return h
        } catch let e as BlockError {
            throw e
        } catch {
            throw .short
        }
    }

    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: SegmentFormat.blockHeaderSize)
        w.write(SegmentFormat.blockMagic)
        w.write(crc)
        w.write(payloadLength)
        w.write(rawLength)
        w.write(count)
        w.write(firstSeq)
        w.write(lastSeq)
        w.write(key)
        return w.bytes
    }
}

/// Why a block could not be read.
public enum BlockError: Error, Sendable, Equatable {
    /// Fewer bytes than the header or payload needs.
    case short
    /// The block does not start with `BLK1`.
    case badMagic
    /// A size or sequence field is out of range.
    case badHeader
    /// The checksum does not match.
    case checksumMismatch
    /// The payload would not decompress.
    case decompression(String)
    /// The decompressed records do not match the header.
    case badRecords(String)

    /// In words.
    public var reason: String {
        switch self {
        case .short: return "block is cut short"
        case .badMagic: return "block magic is not BLK1"
        case .badHeader: return "block header has out-of-range sizes"
        case .checksumMismatch: return "block checksum mismatch"
        case .decompression(let m): return "block payload does not decompress (\(m))"
        case .badRecords(let m): return "block records are malformed (\(m))"
        }
    }
}

/// Encoding and decoding whole blocks.
public enum Block {
    /// Encodes `records` (with their sequence numbers) into one block, compressed at `level`
    /// or with a sealed segment's dictionary (`encoder`); stored in raw zstd blocks, not
    /// compressed, when their bytes are fewer than `storeBelow` (`Zstd.stored`).
    public static func encode(
        _ records: [StoredRecord], level: Int32, encoder: ZstdDictionary.Encoder? = nil, storeBelow: Int = 0
    ) throws(ZstdError) -> [UInt8] {
        var block = BlockRecords(
            firstSeq: records.lazy.map(\.seq).min() ?? 0, capacity: records.reduce(0) { $0 + $1.payload.count + 14 })
        for r in records { block.append(seq: r.seq, key: r.key, payload: r.payload) }
        return try encode(block, level: level, encoder: encoder, storeBelow: storeBelow)
    }

    /// `encode(_:level:encoder:storeBelow:)` of records already laid out; their `flaw` is
    /// the caller's to check.
    static func encode(
        _ records: BlockRecords, level: Int32, encoder: ZstdDictionary.Encoder? = nil, storeBelow: Int = 0
    ) throws(ZstdError) -> [UInt8] {
        let raw = records.raw.bytes
        let payload =
            encoder == nil && raw.count < storeBelow
            ? Zstd.stored(raw[...]) : try Zstd.compress(raw[...], level: level, encoder: encoder)
        var h = BlockHeader(
            crc: 0, payloadLength: UInt32(payload.count), rawLength: UInt32(raw.count),
            count: UInt32(records.count), firstSeq: records.firstSeq, lastSeq: records.lastSeq, key: records.key)
        h.crc = CRC32C.checksum(payload, crc: CRC32C.checksum(h.encoded()[8...]))
        var out = h.encoded()
        out.reserveCapacity(out.count + payload.count)
        out.append(contentsOf: payload)
        return out
    }

    /// Checks the checksum of a whole block (`bytes` = header + payload) and decodes its records.
    /// Decodes and checks a block; only the records whose sequence number `keep` accepts are
    /// copied out (all of them by default), though every record is parsed and checked.
    public static func decode(
        _ bytes: ArraySlice<UInt8>, keep: ((UInt64) -> Bool)? = nil, dictionary: ZstdDictionary? = nil
    ) throws(BlockError) -> (BlockHeader, [StoredRecord]) {
        let (h, records) = try decode(bytes, keep: keep, mayHold: nil, dictionary: dictionary)
        return (h, records ?? [])
    }

    /// `decode(_:keep:)`, asking `mayHold` first, with the block's decompressed bytes (every
    /// record in them, as the format lays them out), whether a record the caller wants can be
    /// there: when it says no, nil, and no record is parsed or copied. Only the checksum and
    /// the decompression are checked then: the caller wants nothing from the block. A sealed
    /// segment's blocks need its `dictionary` (format-spec.md §2.4), when its footer has one.
    public static func decode(
        _ bytes: ArraySlice<UInt8>, keep: ((UInt64) -> Bool)?, mayHold: BlockFilter?,
        dictionary: ZstdDictionary? = nil
    ) throws(BlockError) -> (BlockHeader, [StoredRecord]?) {
        var out: [StoredRecord] = []
        var raw: [UInt8] = []
        let (h, expanded) = try decode(bytes, mayHold: mayHold, dictionary: dictionary) { h, bytes in
            raw = bytes
            if keep == nil { out.reserveCapacity(Int(h.count)) }
        } record: { seq, key, place in
            if keep?(seq) ?? true { out.append(StoredRecord(seq: seq, key: key, payload: Array(raw[place]))) }
        }
        return (h, expanded ? out : nil)
    }

    /// The one reading of a block's records (format-spec.md §2.2): checks its checksum,
    /// expands it, hands its decompressed bytes to `expanded` (unless `mayHold` turns the block
    /// down: then false, and no record is parsed), then each record's sequence number, key and
    /// place in those bytes to `record`, in the block's order, checking every one.
    static func decode(
        _ bytes: ArraySlice<UInt8>, mayHold: BlockFilter?, dictionary: ZstdDictionary?,
        expanded: (BlockHeader, [UInt8]) -> Void, record: (UInt64, UInt64, Range<Int>) -> Void
    ) throws(BlockError) -> (BlockHeader, Bool) {
        let h = try BlockHeader.parse(bytes)
        guard bytes.count >= h.totalLength else { throw .short }
        let start = bytes.startIndex
        let body = bytes[(start + 8)..<(start + h.totalLength)]
        guard CRC32C.matches(CRC32C.checksum(body), h.crc) else { throw .checksumMismatch }
        let payload = bytes[(start + SegmentFormat.blockHeaderSize)..<(start + h.totalLength)]
        let raw: [UInt8]
        do { raw = try Zstd.decompress(payload, rawSize: Int(h.rawLength), dictionary: dictionary) } catch {
            throw .decompression(error.message)
        }
        if let mayHold, !raw.withUnsafeBytes(mayHold) { return (h, false) }
        expanded(h, raw)
        var r = ByteReader(raw)
        var prev = h.firstSeq
        do {
            for _ in 0..<h.count {
                let seq = prev &+ UInt64(bitPattern: try r.readSignedVarint())
                guard seq >= h.firstSeq, seq <= h.lastSeq else {
                    throw BlockError.badRecords("sequence \(seq) outside \(h.firstSeq)...\(h.lastSeq)")
                }
                let key = try r.readU64()
                let len = try r.readVarint()
                guard len <= UInt64(SegmentFormat.maxRecordSize) else {
                    throw BlockError.badRecords("record length \(len) too large")
                }
                let at = r.offset
                try r.skip(Int(len))
                record(seq, key, at..<(at + Int(len)))
                prev = seq
            }
        } catch let e as BlockError {
            throw e
        } catch {
            throw .badRecords("records end early")
        }
        guard r.isAtEnd else { throw .badRecords("\(r.remaining) bytes after the last record") }
        return (h, true)
    }
}
