import AuditBase
import Foundation
import Testing

@testable import SegmentStore

/// Writers outrunning the sealer: the commit thread seals only what is over
/// the bound, oldest first. Sealing every waiting segment there held every ack for over a
/// second under full load.
@Suite struct BackPressureTests {
    @Test func theBacklogIsSealedDownToItsBoundOldestFirst() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var opts = SegmentStoreOptions()
        opts.maxRotatedBacklog = 2
        let s = try SegmentStore(directory: dir, options: opts)
        for i in 0..<5 {
            try s.write(records(10, from: i * 10))
            try s.sync()
            try s.rotate()
        }
        #expect(s.rotatedBacklogFull)
        #expect(try s.sealBacklog().map(\.segment) == [0, 1, 2])
        #expect(!s.rotatedBacklogFull)
        #expect(s.segments().filter { $0.state == .rotated }.map(\.segment) == [3, 4])
        #expect(try s.sealBacklog().isEmpty, "nothing is over the bound")
        #expect(try s.sealRotated().map(\.segment) == [3, 4])
        // Every entry is still there, in order.
        var seqs: [UInt64] = []
        try s.scan {
            seqs.append($0.seq)
            return true
        }
        #expect(seqs == Array(0..<50))
    }
}
