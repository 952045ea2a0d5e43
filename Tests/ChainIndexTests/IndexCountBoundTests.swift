import AuditBase
import Foundation
import LogProofs
import Testing

@testable import AuditEntries
@testable import AuditIndex
@testable import SegmentStore

/// A row count in an index file or a posting record is a claim about the bytes behind it: it
/// is checked against them before anything is reserved for it. (Found by FuzzIndexFile in a CI
/// run: a directory row claiming about 4 billion rows, with a dictionary claiming as many
/// strings, made the reader reserve an array for all of them and run out of memory.)
@Suite struct IndexCountBoundTests {
    /// An index file of one org whose directory row claims `count` rows over `raw` (its
    /// section, decompressed), every checksum valid.
    static func indexFile(count: UInt32, raw: [UInt8]) throws -> [UInt8] {
        let z = try Zstd.compress(raw[...], level: 3)
        var d = ByteWriter()
        d.write(UInt8(5))
        d.write(Array("org_a".utf8))
        d.write(count)
        d.write(UInt64(0))  // firstOrgSeq
        d.write(UInt64(0))  // firstSeq
        d.write(UInt64(2))  // lastSeq
        d.write(UInt64(0))  // minTime
        d.write(UInt64(0))  // maxTime
        d.write(UInt64(0))  // offset
        d.write(UInt32(z.count))
        d.write(UInt32(raw.count))
        d.write(CRC32C.checksum(z))
        var f = ByteWriter()
        f.write(ChainFormat.indexMagic)
        f.write(UInt64(0))  // segment
        f.write(UInt64(0))  // firstSeq
        f.write(UInt64(3))  // endSeq
        f.write(UInt32(1))
        f.write(UInt32(d.bytes.count))
        f.write(CRC32C.checksum(d.bytes))
        f.write(d.bytes)
        f.write(z)
        return f.bytes
    }

    @Test func aRowCountTheSectionCannotHoldIsRefusedOnOpen() throws {
        let dir = NSTemporaryDirectory() + "index-count-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + OrgIndex.fileName(0)
        // A dictionary that claims 4,294,967,280 actions, in a section of 64 bytes.
        var raw = ByteWriter()
        raw.writeVarint(0xFFFF_FFF0)
        raw.write([UInt8](repeating: 1, count: 58))
        try Data(try Self.indexFile(count: 0xFFFF_FFFF, raw: raw.bytes)).write(to: URL(fileURLWithPath: path))
        let e = #expect(throws: AuditError.self) { _ = try SealedIndex(path: path).hits(org: "org_a") }
        #expect(
            e?.code == .corrupt && e?.message.contains("out of range") == true,
            "\(e.map(String.init(describing:)) ?? "")")

        // A row count that fits, with the dictionary still claiming more strings than bytes.
        try FileManager.default.removeItem(atPath: path)
        try Data(try Self.indexFile(count: 10, raw: raw.bytes)).write(to: URL(fileURLWithPath: path))
        let d = #expect(throws: AuditError.self) { _ = try SealedIndex(path: path).hits(org: "org_a") }
        #expect(d?.message.contains("index dictionary too large") == true, "\(d.map(String.init(describing:)) ?? "")")
    }

    @Test func anHonestFileStillReads() throws {
        let dir = NSTemporaryDirectory() + "index-count-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + OrgIndex.fileName(0)
        let hits = (0..<3).map {
            IndexHit(
                seq: UInt64($0), orgSeq: UInt64($0),
                fields: IndexFields(time: 0, category: .access, outcome: .success, action: "a", actor: "human:u"))
        }
        try SealedIndex.write(path: path, segment: 0, firstSeq: 0, endSeq: 3, byOrg: [("org_a", hits)])
        #expect(try SealedIndex(path: path).hits(org: "org_a").map(\.seq) == [0, 1, 2])
    }
}
