import AuditBase
import Foundation
import Testing

@testable import SegmentStore

/// Zero bytes filled ahead of the open segment's blocks (format-spec.md §2.3, §2.5): appends
/// then leave the file's size alone, and recovery keeps a zero tail but still cuts a torn one.
@Suite struct FillAheadTests {
    static let ahead = 64 << 10

    func store(_ dir: String) throws -> SegmentStore {
        var o = SegmentStoreOptions()
        o.fillAhead = Self.ahead
        return try SegmentStore(directory: dir, options: o)
    }

    /// A store in `dir` with `blocks` blocks of 10 records, filled ahead, and where its
    /// blocks end.
    func filledStore(_ dir: String, blocks: Int) throws -> (SegmentStore, Int) {
        let s = try store(dir)
        for b in 0..<blocks {
            try s.write(records(10, from: b * 10))
            try s.sync()
        }
        s.fillAhead()
        return (s, SegmentFormat.headerSize + blocksBytes(s))
    }

    /// `filledStore`, let go at once (as by a crash): where its blocks end.
    @discardableResult
    func filled(_ dir: String, blocks: Int) throws -> Int { try filledStore(dir, blocks: blocks).1 }

    func overwrite(_ path: String, at offset: Int, with bytes: [UInt8]) throws {
        let fd = try FileOps.open(path, O_RDWR)
        defer { close(fd) }
        try FileOps.pwriteAll(fd, bytes[...], at: Int64(offset), path: path)
    }

    @Test func appendsLandInTheFilledSpaceAndLeaveTheSizeAlone() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + SegmentNames.open(0)
        let (s, _) = try filledStore(dir, blocks: 1)
        let filled = fileSize(path)
        #expect(filled == SegmentFormat.headerSize + blocksBytes(s) + Self.ahead)
        for b in 1..<4 {
            try s.write(records(10, from: b * 10))
            try s.sync()
            #expect(fileSize(path) == filled, "block \(b) was written over the zeros, not appended")
        }
        // Less than half is left ahead only after many more blocks; then it is topped up.
        while blocksBytes(s) + SegmentFormat.headerSize + Self.ahead / 2 <= filled {
            try s.write(records(10, from: Int(s.endSeq)))
            try s.sync()
        }
        s.fillAhead()
        #expect(fileSize(path) == SegmentFormat.headerSize + blocksBytes(s) + Self.ahead)
        #expect(try s.read(seqs: (0..<s.endSeq).map { $0 }).count == Int(s.endSeq))
    }

    @Test func aZeroTailIsKeptAndNotReportedAsTorn() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + SegmentNames.open(0)
        try filled(dir, blocks: 3)
        let size = fileSize(path)
        let s = try store(dir)
        #expect(s.recovery.bytesCut == 0)
        #expect(s.recovery.reason == nil)
        #expect(s.endSeq == 30)
        #expect(fileSize(path) == size)
        // The next block goes right after the last one, over the zeros, and reopens whole.
        try s.write(records(10, from: 30))
        try s.sync()
        #expect(fileSize(path) == size)
        let again = try store(dir)
        #expect(again.recovery.bytesCut == 0)
        #expect(again.endSeq == 40)
        #expect(try again.read(seqs: (0..<40).map { UInt64($0) }).map(\.seq) == (0..<40).map { UInt64($0) })
    }

    /// A crash in the middle of a block's write over the zeros: what reached the disk is torn,
    /// and cut together with the zeros behind it.
    @Test func aTornBlockInTheFilledSpaceIsCutZerosIncluded() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + SegmentNames.open(0)
        let end = try filled(dir, blocks: 2)
        // The first 40 bytes of a block: its magic and most of its header.
        try overwrite(path, at: end, with: Array("BLK1".utf8) + [UInt8](repeating: 7, count: 36))
        let s = try store(dir)
        #expect(s.recovery.cutOffset == Int64(end))
        #expect(s.recovery.bytesCut == Int64(Self.ahead))
        #expect(s.endSeq == 20)
        #expect(fileSize(path) == end)
    }

    /// One stray byte deep in the zeros is not a filled tail either.
    @Test func aNonZeroByteAmongTheZerosIsATornTail() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + SegmentNames.open(0)
        let end = try filled(dir, blocks: 1)
        try overwrite(path, at: end + Self.ahead - 1, with: [1])
        let s = try store(dir)
        #expect(s.recovery.cutOffset == Int64(end))
        #expect(s.recovery.bytesCut == Int64(Self.ahead))
        #expect(s.recovery.reason != nil)
        #expect(fileSize(path) == end)
    }

    /// A write that fails over the zeros (a full disk) cuts the file back to the last block,
    /// zeros included; the next fill starts from there again.
    @Test func aFailedWriteTakesTheZerosWithItAndTheNextFillRestoresThem() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + SegmentNames.open(0)
        let (s, end) = try filledStore(dir, blocks: 1)
        #expect(fileSize(path) == end + Self.ahead)
        let plan = FaultPlan()
        FileOps.intercept(dir, with: plan)
        plan.add(.fail(ENOSPC), times: 1) { $0.isWrite(to: ".open") }
        #expect(throws: AuditError.self) { try s.write(records(10, from: 10)) }
        FileOps.stopIntercepting(dir)
        #expect(fileSize(path) == end)
        s.fillAhead()
        #expect(fileSize(path) == end + Self.ahead, "the fill did not notice the zeros were cut")
        try s.write(records(10, from: 10))
        try s.sync()
        #expect(fileSize(path) == end + Self.ahead)
        #expect(try store(dir).endSeq == 20)
    }

    /// A rotated segment, which must be whole, may still end in zeros.
    @Test func aRotatedSegmentMayEndInZeros() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let s = try store(dir)
            try s.write(records(10))
            try s.sync()
            s.fillAhead()
            try s.rotate()
            try s.write(records(5, from: 10))
            try s.sync()
        }
        #expect(fileSize(dir + "/" + SegmentNames.open(0)) > SegmentFormat.headerSize + Self.ahead)
        let s = try store(dir)
        #expect(s.endSeq == 15)
        try s.sealRotated()
        #expect(try s.read(seqs: (0..<15).map { UInt64($0) }).map(\.seq) == (0..<15).map { UInt64($0) })
    }

    func blocksBytes(_ s: SegmentStore) -> Int {
        s.unsealed().filter(\.isOpen).reduce(0) { $0 + Int($1.endOffset) - SegmentFormat.headerSize }
    }
}

/// The zeros filled ahead never exceed the segment's rotation size: with 64 KiB segments (the
/// daemon's full-disk test) 1 MiB of zeros per open and rotated segment filled its 3 MB disk.
@Suite struct FillAheadBoundTests {
    @Test func noMoreZerosAheadThanTheSegmentCanHold() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = SegmentStoreOptions()
        o.fillAhead = 1 << 20
        o.rotateBytes = 16 << 10
        let s = try SegmentStore(directory: dir, options: o)
        try s.write(records(10, from: 0))
        try s.sync()
        s.fillAhead()
        let size = fileSize(dir + "/" + SegmentNames.open(0))
        #expect(
            size == SegmentFormat.headerSize + FillAheadTests().blocksBytes(s) + (16 << 10),
            "the open segment's file is \(size) bytes")
    }
}
