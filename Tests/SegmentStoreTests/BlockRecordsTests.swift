import Foundation
import Testing

@testable import AuditBase
@testable import SegmentStore

/// Records written into their block as they come (`BlockRecords`, the group commit's path)
/// make the block format-spec.md §2.2 describes, and the store takes only a block of its next
/// records, whole.
@Suite struct BlockRecordsTests {
    /// The §2.2 record layout, written out here on its own: `seqDelta` (zig-zag, from the
    /// previous record; the first's from the smallest seq), `key` u64, `len` varint, bytes.
    func layout(_ records: [StoredRecord]) -> [UInt8] {
        var w = ByteWriter()
        var prev = records.map(\.seq).min() ?? 0
        for r in records {
            let d = Int64(bitPattern: r.seq &- prev)
            w.writeVarint(UInt64(bitPattern: (d << 1) ^ (d >> 63)))
            w.write(r.key)
            w.writeVarint(UInt64(r.payload.count))
            w.write(r.payload)
            prev = r.seq
        }
        return w.bytes
    }

    func expanded(_ block: [UInt8]) throws -> (BlockHeader, [UInt8], [StoredRecord]) {
        var raw: [UInt8] = []
        var out: [StoredRecord] = []
        let (h, _) = try Block.decode(block[...], mayHold: nil, dictionary: nil) { _, bytes in
            raw = bytes
        } record: { seq, key, place in
            out.append(StoredRecord(seq: seq, key: key, payload: Array(raw[place])))
        }
        return (h, raw, out)
    }

    @Test func recordsWrittenAsTheyComeMakeTheSpecsBlock() throws {
        // A seal's order (clustered by key, so sequence numbers jump back), and the group
        // commit's (consecutive), each record written through a writer closure.
        var rng = SplitMix(seed: 5)
        let consecutive = (0..<40).map { i in
            StoredRecord(
                seq: 1_000 + UInt64(i), key: rng.next() % 3 + 1,
                payload: [UInt8](repeating: UInt8(i), count: Int(rng.next() % 300)))
        }
        let clustered = consecutive.sorted { ($0.key, $0.seq) < ($1.key, $1.seq) }
        for records in [consecutive, clustered, Array(consecutive.prefix(1))] {
            let least = try #require(records.map(\.seq).min())
            var block = BlockRecords(firstSeq: least)
            for r in records {
                block.append(seq: r.seq, key: r.key, payloadCount: r.payload.count) { $0.write(r.payload) }
            }
            #expect(block.flaw == nil)
            #expect(block.consecutive == (records == consecutive || records.count == 1))
            let (h, raw, back) = try expanded(try Block.encode(block, level: 1))
            #expect(raw == layout(records))
            #expect(back == records)
            #expect(h.firstSeq == least)
            #expect(h.lastSeq == records.map(\.seq).max())
            #expect(h.count == UInt32(records.count))
            #expect(h.key == (Set(records.map(\.key)).count == 1 ? records[0].key : 0))
            // The same block as the records read back make.
            #expect(try Block.encode(records, level: 1) == Block.encode(block, level: 1))
        }
    }

    @Test func theStoreTakesOnlyItsNextRecordsWhole() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try SegmentStore(directory: dir)
        let payload = Array("an entry".utf8)
        func refused(_ block: BlockRecords, saying words: String) {
            do {
                try s.write(block)
                Issue.record("a block at \(block.firstSeq) of \(block.count) was taken")
            } catch {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains(words), "\(error.message)")
            }
        }
        var notNext = BlockRecords(firstSeq: 1)
        notNext.append(seq: 1, key: 1, payload: payload)
        refused(notNext, saying: "is not the next 1 from 0")
        var gap = BlockRecords(firstSeq: 0)
        gap.append(seq: 0, key: 1, payload: payload)
        gap.append(seq: 2, key: 1, payload: payload)
        refused(gap, saying: "is not the next 2 from 0")
        var short = BlockRecords(firstSeq: 0)
        short.append(seq: 0, key: 1, payloadCount: payload.count + 1) { $0.write(payload) }
        refused(short, saying: "not as many as its length says")
        #expect(s.nextSeq == 0)

        var good = BlockRecords(firstSeq: 0)
        for i in 0..<3 { good.append(seq: UInt64(i), key: 1, payload: payload + [UInt8(i)]) }
        #expect(try s.write(good) == 0)
        try s.sync()
        #expect(s.nextSeq == 3)
        for i in 0..<3 { #expect(try s.read(seq: UInt64(i)).payload == payload + [UInt8(i)]) }
    }

    /// A writer announces its payload's length before writing it: `varintCount` must be
    /// what `writeVarint` writes, at every width.
    @Test func aVarintsCountIsWhatItsWriterWrites() {
        var values: [UInt64] = [0, .max]
        for bits in 1..<64 { values += [(1 << UInt64(bits)) - 1, 1 << UInt64(bits)] }
        for v in values {
            var w = ByteWriter()
            w.writeVarint(v)
            #expect(ByteWriter.varintCount(v) == w.bytes.count, "\(v)")
        }
    }
}
