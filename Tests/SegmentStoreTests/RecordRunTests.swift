import Foundation
import Testing

@testable import AuditBase
@testable import SegmentStore

/// A pass over whole segments reads records in place in their expanded blocks
/// (`SegmentStore.scanRuns`): the same records, in the same order, as a copying scan.
@Suite struct RecordRunTests {
    /// A store with two sealed segments (records clustered by key, so blocks do not follow
    /// sequence order), a rotated one and an open one.
    func store(in dir: String) throws -> SegmentStore {
        var opts = SegmentStoreOptions()
        opts.blockTarget = 2048
        let s = try SegmentStore(directory: dir, options: opts)
        var rng = SplitMix(seed: 11)
        for round in 0..<4 {
            for _ in 0..<6 {
                let batch = (0..<50).map { _ -> StoreRecord in
                    let k = rng.next() % 9 + 1
                    let body = String(repeating: "r\(rng.next() % 1000),", count: Int(rng.next() % 20) + 1)
                    return StoreRecord(key: k, payload: Array("{\"k\":\(k),\"v\":\"\(body)\"}".utf8))
                }
                try s.write(batch)
                try s.sync()
            }
            if round < 3 { try s.rotate() }
            if round < 2 { _ = try s.sealRotated() }
        }
        return s
    }

    func copied(_ s: SegmentStore, from: UInt64, to: UInt64?) throws -> [(UInt64, [UInt8])] {
        var out: [(UInt64, [UInt8])] = []
        try s.scan(from: from, to: to) { r in
            out.append((r.seq, r.payload))
            return true
        }
        return out
    }

    func inPlace(_ s: SegmentStore, from: UInt64, to: UInt64?, batch: Int) throws -> [(UInt64, [UInt8])] {
        var out: [(UInt64, [UInt8])] = []
        try s.scanRuns(from: from, to: to, batch: batch) { run in
            #expect(run.count <= batch)
            run.forEachPayload(in: 0..<run.count) { i, bytes in
                let viaPointer = Array(bytes)
                #expect(viaPointer == run.payload(i))
                out.append((run.seqs[i], viaPointer))
            }
            // Any sub-range, record by record, in order, each its own bytes (records of one
            // block share an access to it; a range may start or end inside a block).
            for range in [0..<run.count, (run.count / 3)..<run.count, 1..<max(1, run.count - 1), 0..<0] {
                var seen: [Int] = []
                run.forEachPayload(in: range) { i, bytes in
                    seen.append(i)
                    #expect(Array(bytes) == run.payload(i))
                }
                #expect(seen == Array(range))
            }
            return true
        }
        return out
    }

    @Test func runsHoldTheSameRecordsAsACopyingScan() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try store(in: dir)
        let states = Set(s.segments().map(\.state))
        #expect(states.contains(.sealed) && states.contains(.open) && states.contains(.rotated))
        let end = s.endSeq
        #expect(end == 1200)
        for (from, to) in [(UInt64(0), UInt64?.none), (7, 1199), (299, 301), (450, 950), (1199, nil), (0, 1)] {
            for batch in [1, 64, 8192] {
                let a = try copied(s, from: from, to: to)
                let b = try inPlace(s, from: from, to: to, batch: batch)
                #expect(a.map(\.0) == b.map(\.0), "from \(from) to \(String(describing: to)) batch \(batch)")
                #expect(a.map(\.1) == b.map(\.1), "from \(from) to \(String(describing: to)) batch \(batch)")
                #expect(b.first?.0 == from && b.last?.0 == (to ?? end) - 1)
            }
        }
    }

    @Test func aSealedSegmentReadInPlaceMatchesReadAll() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try store(in: dir)
        for info in s.segments() where info.state == .sealed {
            let seg = try SealedSegment(path: info.path)
            let all = try seg.readAll()
            let run = try seg.readRun()
            #expect(run.seqs == all.map(\.seq))
            #expect((0..<run.count).map { run.payload($0) } == all.map(\.payload))
            // Clustered by key: some block holds records out of sequence order.
            #expect(seg.footer.seqMap != seg.footer.seqMap.sorted())
        }
    }

    @Test func stoppingEndsTheScan() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try store(in: dir)
        var calls = 0
        try s.scanRuns(batch: 100) { _ in
            calls += 1
            return calls < 3
        }
        #expect(calls == 3)
    }
}
