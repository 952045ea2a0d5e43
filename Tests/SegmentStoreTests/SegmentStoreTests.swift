import ChainIndex
import Foundation
import Testing

@testable import AuditBase
@testable import SegmentStore

@Suite struct SegmentStoreTests {
    @Test func roundTripAndReopen() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = records(500)
        do {
            let s = try SegmentStore(directory: dir)
            #expect(try s.write(Array(input[0..<200])) == 0)
            #expect(throws: AuditError.self) { try s.read(seq: 0) }  // not durable yet, not readable
            try s.sync()
            #expect(try s.write(Array(input[200...])) == 200)
            try s.sync()
            #expect(s.endSeq == 500)
            for i in [0, 1, 199, 200, 499] { #expect(try s.read(seq: UInt64(i)).payload == input[i].payload) }
        }
        let s = try SegmentStore(directory: dir)
        #expect(s.recovery.bytesCut == 0)
        #expect(s.recovery.recordsKept == 500)
        var seen: [StoredRecord] = []
        try s.scan {
            seen.append($0)
            return true
        }
        #expect(seen.map(\.payload) == input.map(\.payload))
        #expect(seen.map(\.seq) == (0..<500).map { UInt64($0) })
        #expect(try s.write(records(1)) == 500)
    }

    @Test func sealingClustersByKeyAndMakesTheFileReadOnly() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var opts = SegmentStoreOptions()
        opts.blockTarget = 512
        let s = try SegmentStore(directory: dir, options: opts)
        let input = records(300, keys: 4)
        for chunk in stride(from: 0, to: 300, by: 7) {
            try s.write(Array(input[chunk..<min(300, chunk + 7)]))
            try s.sync()
        }
        try s.rotate()
        let sealed = try s.sealRotated()
        #expect(sealed.count == 1)
        let path = try #require(sealed.first?.path)
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o444)
        #expect(!FileManager.default.fileExists(atPath: dir + "/" + SegmentNames.open(0)))
        let seg = try SealedSegment(path: path)
        #expect(seg.footer.count == 300)
        // Each key's records sit in as few blocks as their size allows (one extra for a shared edge).
        var blocksOfKey: [UInt64: Set<Int>] = [:]
        var bytesOfKey: [UInt64: Int] = [:]
        for i in seg.footer.blocks.indices {
            for r in try seg.readBlock(i) {
                blocksOfKey[r.key, default: []].insert(i)
                bytesOfKey[r.key, default: 0] += r.payload.count + 12
            }
        }
        for (k, blocks) in blocksOfKey {
            #expect(blocks.count <= (bytesOfKey[k] ?? 0) / 512 + 2, "key \(k) spread over \(blocks.count) blocks")
        }
        #expect(seg.footer.blocks.filter { $0.key != 0 }.count >= seg.footer.blocks.count / 2)
        for i in [0, 1, 150, 299] { #expect(try s.read(seq: UInt64(i)).payload == input[i].payload) }
        var n = 0
        try s.scan { r in
            #expect(r.payload == input[Int(r.seq)].payload)
            n += 1
            return true
        }
        #expect(n == 300)
        // Reopen: the sealed segment is listed, the new open segment continues the sequence.
        let again = try SegmentStore(directory: dir, options: opts)
        #expect(again.segments().map(\.state) == [.sealed, .open])
        #expect(try again.write(records(1)) == 300)
    }

    /// `read(seqs:mayHold:)` (issue 22's search that skips): a block the filter turns down
    /// yields nil for each record wanted from it, in sealed and open segments alike; every
    /// other record is the one stored, as `read(seqs:)` gives it.
    @Test func aBlockFilterTurnsDownWholeBlocksAndNothingElse() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var opts = SegmentStoreOptions()
        opts.blockTarget = 512
        let s = try SegmentStore(directory: dir, options: opts)
        // Key 1's records carry a mark; sealing clusters them into blocks of their own.
        let input = (0..<400).map { (i: Int) -> StoreRecord in
            let text: String = i % 4 == 0 ? "MARK \(i)" : "plain \(i)"
            return StoreRecord(key: UInt64(i % 4 + 1), payload: Array(text.utf8))
        }
        for chunk in stride(from: 0, to: 300, by: 7) {
            try s.write(Array(input[chunk..<min(300, chunk + 7)]))
            try s.sync()
        }
        try s.rotate()
        _ = try s.sealRotated()
        try s.write(Array(input[300...]))
        try s.sync()
        let seqs = (0..<400).map { UInt64($0) }.shuffled()
        let mark = Array("MARK".utf8)
        let read = try s.read(seqs: seqs, mayHold: { raw in mark.withUnsafeBytes { ByteSearch.contains(raw, $0) } })
        #expect(read.count == seqs.count)
        for (seq, r) in zip(seqs, read) {
            if let r {
                #expect(r.seq == seq && r.payload == input[Int(seq)].payload)
            } else {
                #expect(seq % 4 != 0, "record \(seq) holds the mark, and its block was turned down")
            }
        }
        #expect(read.filter { $0 == nil }.count > 100, "the blocks of the other keys are turned down")
        #expect(
            try s.read(seqs: seqs, mayHold: { _ in true }).map { $0?.payload }
                == (try s.read(seqs: seqs)).map(\.payload))
        #expect(try s.read(seqs: seqs, mayHold: { _ in false }).allSatisfy { $0 == nil })
    }

    @Test func groupCommitSharesSyncsAcrossConcurrentAppenders() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try SegmentStore(directory: dir)
        let groups = Counter()
        let q = GroupCommitQueue<StoreRecord, UInt64>(name: "test-commit") { items in
            groups.add()
            let first = try s.write(items)
            try s.sync()
            return (0..<items.count).map { first + UInt64($0) }
        }
        let seqs = try await withThrowingTaskGroup(of: [UInt64].self) { g in
            for t in 0..<32 {
                g.addTask { try await q.submit(records(25, from: t * 25)) }
            }
            var all: [UInt64] = []
            for try await r in g { all += r }
            return all
        }
        q.shutdown()
        #expect(seqs.sorted() == (0..<800).map { UInt64($0) })
        #expect(groups.value < 32, "32 concurrent appenders should have shared fsyncs (\(groups.value) groups)")
        #expect(s.endSeq == 800)
    }

    @Test func loneAppenderIsNotKeptWaiting() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try SegmentStore(directory: dir)
        let q = GroupCommitQueue<StoreRecord, UInt64>(name: "lone") { items in
            let first = try s.write(items)
            try s.sync()
            return (0..<items.count).map { first + UInt64($0) }
        }
        // Completes without any other appender arriving (the test would hang otherwise).
        #expect(try q.submitAndWait(records(1)) == [0])
        #expect(try q.submitAndWait(records(1)) == [1])
        q.shutdown()
        #expect(throws: GroupCommitStopped.self) { try q.submitAndWait(records(1)) }
    }
}

final class Counter: @unchecked Sendable {
    private let l = NSLock()
    private var n = 0
    func add() { l.withLock { n += 1 } }
    var value: Int { l.withLock { n } }
}

@Suite struct ChecksumTests {
    @Test func crc32cKnownAnswers() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        // Incremental equals one-shot, across the 8-byte fast path boundary.
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(CRC32C.checksum(data[500...], crc: CRC32C.checksum(data[..<500])) == CRC32C.checksum(data))
    }

    @Test func theCRC32InstructionAgreesWithTheTables() {
        // This machine class has it; a CPU without it takes the tables, checked above.
        #if arch(x86_64)
        #expect(CRC32C.hardware, "x86-64 CPUs since 2008 have SSE 4.2")
        #endif
        var rng = SystemRandomNumberGenerator()
        for n in [0, 1, 7, 8, 9, 15, 16, 63, 64, 65, 4095, 65_537] {
            let data = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for start in [0, 1, 3] where start <= n {
                let slice = data[start...]
                let seed = UInt32.random(in: 0...UInt32.max, using: &rng)
                let hw = slice.withUnsafeBytes { CRC32C.update(seed, $0) }
                let sw = slice.withUnsafeBytes { CRC32C.software(seed, $0) }
                #expect(hw == sw, "\(n) bytes from \(start)")
            }
        }
    }

    /// Fixed-width reads load whole words: the same values as byte by byte at every offset,
    /// within a range that stops short of the array, and a range past the array's end is
    /// cut to it rather than read beyond.
    @Test func fixedWidthReadsAgreeWithTheBytesAtAnyOffset() throws {
        let bytes: [UInt8] = (0..<40).map { UInt8(($0 * 37 + 11) & 0xFF) }
        func le(_ at: Int, _ n: Int) -> UInt64 { (0..<n).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) } }
        for at in 0..<24 {
            var r = ByteReader(bytes, range: at..<at + 14)
            #expect(try r.readU64() == le(at, 8))
            #expect(try r.readU32() == UInt32(le(at + 8, 4)))
            #expect(try r.readU16() == UInt16(le(at + 12, 2)))
            #expect(throws: ByteReader.Short.self) { try r.readU16() }
        }
        var past = ByteReader(bytes, range: 36..<64)
        #expect(past.remaining == 4)
        #expect(try past.readU32() == UInt32(le(36, 4)))
        #expect(throws: ByteReader.Short.self) { try past.readU64() }
    }

    @Test func varintsRoundTripAndRejectOverlongInput() throws {
        var w = ByteWriter()
        let values: [UInt64] = [0, 1, 127, 128, 300, 1 << 35, .max]
        for v in values { w.writeVarint(v) }
        for v: Int64 in [0, -1, 1, .min, .max] { w.writeSignedVarint(v) }
        var r = ByteReader(w.bytes)
        for v in values { #expect(try r.readVarint() == v) }
        for v: Int64 in [0, -1, 1, .min, .max] { #expect(try r.readSignedVarint() == v) }
        var bad = ByteReader([UInt8](repeating: 0xFF, count: 11))
        #expect(throws: ByteReader.Short.self) { try bad.readVarint() }
    }
}

@Suite struct GroupCommitAfterAcksTests {
    final class Record: @unchecked Sendable {
        let lock = NSLock()
        var acked = 0
        var ackedWhenAfterRan: [Int] = []
    }

    final class Waiter: @unchecked Sendable {
        let cond = NSCondition()
        var value: [Int]?
        var done = false

        func set(_ v: [Int]?) {
            cond.lock()
            value = v
            done = true
            cond.broadcast()
            cond.unlock()
        }

        func wait() -> [Int]? {
            cond.lock()
            defer { cond.unlock() }
            while !done { _ = cond.wait(until: Date().addingTimeInterval(30)) }
            return value
        }
    }

    /// `afterAcks` runs once every caller of the group has its results, before the next group.
    @Test func afterAcksRunsOnceTheCallersHaveTheirResults() throws {
        let r = Record()
        let q = GroupCommitQueue<Int, Int>(
            name: "after-acks", body: { items in items.map { $0 * 2 } },
            afterAcks: { r.lock.withLock { r.ackedWhenAfterRan.append(r.acked) } })
        for i in 0..<3 {
            let box = Waiter()
            q.submit([i, i + 10]) { result in
                r.lock.withLock { r.acked += 1 }
                box.set((try? result.get()).map { Array($0) })
            }
            #expect(box.wait() == [i * 2, (i + 10) * 2])
        }
        q.shutdown()
        // Group k's afterAcks saw its own ack and every earlier one.
        #expect(r.ackedWhenAfterRan == [1, 2, 3])
    }
}
