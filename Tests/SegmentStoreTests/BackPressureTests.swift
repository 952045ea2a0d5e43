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

    /// Before that bound, the slowdown: a writer over `slowdownBacklog` waits for the sealer
    /// (at most `slowdownWait`), and a seal that brings the backlog down ends the wait.
    @Test func overTheSlowdownBacklogAWriterWaitsForTheSealer() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var opts = SegmentStoreOptions()
        opts.slowdownBacklog = 1
        opts.maxRotatedBacklog = 10
        opts.slowdownWait = .milliseconds(50)
        let s = try SegmentStore(directory: dir, options: opts)
        try s.write(records(10, from: 0))
        try s.sync()
        try s.rotate()
        #expect(!s.waitForSealer(), "one rotated segment is within the bound")

        try s.write(records(10, from: 10))
        try s.sync()
        try s.rotate()
        // Nobody seals: the wait ends at its limit.
        let started = ContinuousClock.now
        #expect(s.waitForSealer())
        #expect(ContinuousClock.now - started >= .milliseconds(50))

        // A seal on another thread (started a little later, so the writer is waiting by then)
        // ends a ten-minute wait as soon as the backlog is within the bound.
        let dir2 = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir2) }
        var long = opts
        long.slowdownWait = .seconds(600)
        let t = try SegmentStore(directory: dir2, options: long)
        for i in 0..<2 {
            try t.write(records(10, from: i * 10))
            try t.sync()
            try t.rotate()
        }
        let sealer = Thread {
            Thread.sleep(forTimeInterval: 0.1)
            _ = try? t.sealRotated()
        }
        let waiting = ContinuousClock.now
        sealer.start()
        t.waitForSealer()
        #expect(ContinuousClock.now - waiting < .seconds(60))
        #expect(t.segments().filter { $0.state == .rotated }.count <= 1)
    }
}
