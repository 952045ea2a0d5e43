import Foundation
import Testing
@testable import SegmentStore

/// Failure modes of the open segment and of sealing, named after what goes wrong.
@Suite struct RecoveryTests {
    func storeWithBlocks(_ dir: String, blocks: Int) throws -> [Int64] {
        let s = try SegmentStore(directory: dir)
        var ends: [Int64] = []
        for b in 0..<blocks {
            try s.write(records(10, from: b * 10))
            try s.sync()
            ends.append(Int64(fileSize(dir + "/" + SegmentNames.open(0))))
        }
        return ends
    }

    @Test func halfWrittenLastBlockIsCutAndReported() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ends = try storeWithBlocks(dir, blocks: 3)
        let path = dir + "/" + SegmentNames.open(0)
        try shrink(path, to: Int(ends[1] + (ends[2] - ends[1]) / 2))
        let s = try SegmentStore(directory: dir)
        #expect(s.recovery.bytesCut == (ends[2] - ends[1]) / 2)
        #expect(s.recovery.cutOffset == ends[1])
        #expect(s.recovery.recordsKept == 20)
        #expect(s.endSeq == 20)
        #expect(Int64(fileSize(path)) == ends[1])
        #expect(try s.write(records(1)) == 20)
    }

    @Test func partialBlockHeaderIsCut() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ends = try storeWithBlocks(dir, blocks: 2)
        try shrink(dir + "/" + SegmentNames.open(0), to: Int(ends[0]) + 10)
        let s = try SegmentStore(directory: dir)
        #expect(s.recovery.bytesCut == 10)
        #expect(s.recovery.reason == "partial block header")
        #expect(s.endSeq == 10)
    }

    @Test func checksumMismatchInLastBlockIsCut() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ends = try storeWithBlocks(dir, blocks: 3)
        try flipByte(dir + "/" + SegmentNames.open(0), at: Int(ends[2]) - 3)
        let s = try SegmentStore(directory: dir)
        #expect(s.recovery.reason == "block checksum mismatch")
        #expect(s.endSeq == 20)
    }

    @Test func checksumMismatchBeforeValidBlocksIsCorruptionNotATornTail() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ends = try storeWithBlocks(dir, blocks: 3)
        let path = dir + "/" + SegmentNames.open(0)
        let before = fileSize(path)
        try flipByte(path, at: Int(ends[1]) - 3)
        let e = #expect(throws: StoreError.self) { try SegmentStore(directory: dir) }
        #expect(e?.code == .corrupt)
        #expect(e?.offset == ends[0])
        #expect(fileSize(path) == before, "nothing acknowledged may be cut")
    }

    @Test func garbageAppendedAfterTheLastBlockIsCut() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ends = try storeWithBlocks(dir, blocks: 2)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/" + SegmentNames.open(0)))
        try h.seekToEnd()
        try h.write(contentsOf: Data(repeating: 0, count: 4096))
        try h.close()
        let s = try SegmentStore(directory: dir)
        #expect(s.recovery.bytesCut == 4096)
        #expect(s.recovery.cutOffset == ends[1])
    }

    @Test func crashBeforeSealRenameLeavesTheOpenSegment() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try storeWithBlocks(dir, blocks: 2)
        // A half-written sealed file from a seal that never reached its rename.
        try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: dir + "/" + SegmentNames.sealing(0)))
        let s = try SegmentStore(directory: dir)
        #expect(!FileManager.default.fileExists(atPath: dir + "/" + SegmentNames.sealing(0)))
        #expect(s.endSeq == 20)
        #expect(try s.read(seq: 19).payload == records(20)[19].payload)
    }

    @Test func crashAfterSealRenameRemovesTheStaleOpenSegment() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let s = try SegmentStore(directory: dir)
            try s.write(records(30))
            try s.sync()
            try s.rotate()
            // Seal by hand but "crash" before the open file is removed.
            var recs: [StoredRecord] = []
            try s.scan { recs.append($0); return true }
            _ = try Sealer.seal(records: recs, segment: 0, firstSeq: 0, directory: dir, blockTarget: 1 << 16, level: 3)
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/" + SegmentNames.open(0)))
        let s = try SegmentStore(directory: dir)
        #expect(!FileManager.default.fileExists(atPath: dir + "/" + SegmentNames.open(0)))
        #expect(s.segments().map(\.state) == [.sealed, .open])
        #expect(s.endSeq == 30)
    }

    @Test func flippedByteInSealedBlockIsReportedWithFileAndOffset() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try SegmentStore(directory: dir)
        try s.write(records(100))
        try s.sync()
        try s.rotate()
        let info = try #require(try s.sealRotated().first)
        let seg = try SealedSegment(path: info.path)
        let block = seg.footer.blocks[0]
        try flipByte(info.path, at: Int(block.offset) + SegmentFormat.blockHeaderSize + 5)
        let fresh = try SegmentStore(directory: dir)
        let e = #expect(throws: StoreError.self) { try fresh.scan { _ in true } }
        #expect(e?.code == .corrupt)
        #expect(e?.path == info.path)
        #expect(e?.offset == block.offset)
        #expect(e?.message == "block checksum mismatch")
    }

    @Test func truncatedSealedSegmentIsRefused() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let s = try SegmentStore(directory: dir)
            try s.write(records(100))
            try s.sync()
            try s.rotate()
            _ = try s.sealRotated()
        }
        let path = dir + "/" + SegmentNames.sealed(0)
        try shrink(path, to: fileSize(path) - 30)
        let e = #expect(throws: StoreError.self) { try SegmentStore(directory: dir) }
        #expect(e?.path == path)
    }

    @Test func missingSegmentIsRefused() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let s = try SegmentStore(directory: dir)
            for _ in 0..<3 {
                try s.write(records(10))
                try s.sync()
                try s.rotate()
            }
            _ = try s.sealRotated()
        }
        try FileManager.default.removeItem(atPath: dir + "/" + SegmentNames.sealed(1))
        let e = #expect(throws: StoreError.self) { try SegmentStore(directory: dir) }
        #expect(e?.message.contains("segment 1 is missing") == true)
    }

    @Test func readOnlyOpenNeverCutsOrCreates() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ends = try storeWithBlocks(dir, blocks: 2)
        let path = dir + "/" + SegmentNames.open(0)
        try shrink(path, to: Int(ends[1]) - 5)
        let s = try SegmentStore(directory: dir, readOnly: true)
        #expect(s.recovery.bytesCut > 0)
        #expect(s.endSeq == 10)
        #expect(Int64(fileSize(path)) == ends[1] - 5)
        #expect(throws: StoreError.self) { try s.write(records(1)) }
    }
}

@Suite struct SegmentCreationTests {
    @Test func crashWhileCreatingAnOpenSegmentLeavesNothingHalfMade() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let s = try SegmentStore(directory: dir)
            try s.write(records(10))
            try s.sync()
            try s.rotate()
            _ = try s.sealRotated()
        }
        // A creation that died before its rename: an empty, headerless temp file.
        FileManager.default.createFile(atPath: dir + "/" + SegmentNames.open(2) + ".tmp", contents: Data())
        let s = try SegmentStore(directory: dir)
        #expect(!FileManager.default.fileExists(atPath: dir + "/" + SegmentNames.open(2) + ".tmp"))
        #expect(s.endSeq == 10)
        #expect(try s.write(records(1)) == 10)
    }
}
