import AuditBase
import Foundation
import Testing

@testable import TimeStamping

/// `checkpoints/timestamps`: durable appends, a torn tail cut at the next open, and an
/// export's selection (sizes in its range, at most a limit, the newest always kept).
@Suite struct TimeStampJournalTests {
    func stamp(_ size: UInt64) -> StampedCheckpoint {
        StampedCheckpoint(
            entry: size + 1, size: size, root: SHA256.hash(Array("r\(size)".utf8)), authority: "http://tsa.example/",
            time: Int64(size) * 1000,
            token: Array(repeating: UInt8(size & 0xFF), count: 1500))
    }

    @Test func aTornTailIsCutAndTheRestReadsBack() throws {
        let path = NSTemporaryDirectory() + "tsj-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let j = try TimeStampJournal(path: path)
            for s in 1...10 { try j.append(stamp(UInt64(s) * 10)) }
        }
        // A crash in the middle of the next append: half a record.
        var bytes = try #require(FileManager.default.contents(atPath: path))
        let whole = bytes.count
        var w = ByteWriter(capacity: 2000)
        FramedRecords.frame(stamp(110).body, into: &w)
        bytes.append(contentsOf: w.bytes.prefix(700))
        try bytes.write(to: URL(fileURLWithPath: path))
        let j = try TimeStampJournal(path: path)
        #expect(j.count == 10)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == whole)
        try j.append(stamp(120))
        let all = try j.stamps(sizes: 1...1000, limit: 100)
        #expect(all.map(\.size) == (1...10).map { UInt64($0) * 10 } + [120])
        #expect(all.last == stamp(120))
    }

    @Test func anExportTakesItsRangeThinnedWithTheNewestKept() throws {
        let path = NSTemporaryDirectory() + "tsj-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let j = try TimeStampJournal(path: path)
        for s in 1...100 { try j.append(stamp(UInt64(s))) }
        // A token whose entry it holds already (a second catch-up) is not added again.
        try j.append(stamp(50))
        #expect(j.count == 100 && j.lastEntry == 101)
        #expect(try j.stamps(sizes: 41...50, limit: 256).map(\.size) == Array(41...50))
        let thin = try j.stamps(sizes: 1...100, limit: 10).map(\.size)
        #expect(thin.count == 10 && thin.first == 1 && thin.last == 100 && thin == thin.sorted())
        #expect(try j.stamps(sizes: 101...200, limit: 10).isEmpty)
    }
}
