import AuditBase
import AuditEntries
import Foundation
import LogProofs
import SegmentStore

#if canImport(Glibc)
import Glibc
#endif

/// One org's row in a sealed index file's directory.
package struct IndexDirEntry: Sendable, Equatable {
    package var org: String
    package var count: UInt32
    package var firstOrgSeq: UInt64
    package var firstSeq: UInt64
    package var lastSeq: UInt64
    package var minTime: Int64
    package var maxTime: Int64
    package var offset: UInt64
    package var length: UInt32
    package var rawLength: UInt32
    package var crc: UInt32
}

/// A sealed segment's org index file (format-spec.md §7):
///
///     file    := header directory section*
///     header  := "AUDIDX01" segment:u64 firstSeq:u64 endSeq:u64 orgs:u32 dirLen:u32 dirCrc:u32
///     directory := (orgLen:u8 org count:u32 firstOrgSeq:u64 firstSeq:u64 lastSeq:u64
///                   minTime:i64 maxTime:i64 offset:u64 len:u32 raw:u32 crc:u32)*   sorted by org
///     section := zstd(actions actors row*)   rows in sequence order
///     actions, actors := n:varint (len:varint bytes)*
///     row     := seqDelta:varint timeDelta:zigzag category:u8 outcome:u8 action:varint actor:varint
package struct SealedIndex: Sendable {
    package static let headerSize = 8 + 8 + 8 + 8 + 4 + 4 + 4
    package let path: String
    package let segment: UInt64
    package let firstSeq: UInt64
    package let endSeq: UInt64
    package let dir: [String: IndexDirEntry]

    /// Opens an index file and checks its header and directory: every section must lie in
    /// the file, every org's rows within the segment's range (format-spec.md §7.1).
    package init(path: String) throws {
        self.path = path
        let fd = try FileOps.open(path, O_RDONLY)
        defer { close(fd) }
        let size = UInt64(max(0, try FileOps.size(fd, path: path)))
        var h = ByteReader(try FileOps.preadExact(fd, count: Self.headerSize, at: 0, path: path))
        guard Array(try h.read(count: 8)) == ChainFormat.indexMagic else {
            throw AuditError(.corrupt, "not an index file (bad magic)", path: path, offset: 0)
        }
        segment = try h.readU64()
        firstSeq = try h.readU64()
        endSeq = try h.readU64()
        guard segment < SegmentFormat.maxSeq, firstSeq <= endSeq, endSeq < SegmentFormat.maxSeq else {
            throw AuditError(
                .corrupt,
                "index header names segment \(segment) with sequence range \(firstSeq)..<\(endSeq), out of range",
                path: path, offset: 8)
        }
        let n = Int(try h.readU32())
        let dirLen = Int(try h.readU32())
        let dirCrc = try h.readU32()
        guard dirLen <= 64 << 20, UInt64(Self.headerSize + dirLen) <= size else {
            throw AuditError(.corrupt, "index directory size \(dirLen) is out of range", path: path, offset: 32)
        }
        let dbytes = try FileOps.preadExact(fd, count: dirLen, at: Int64(Self.headerSize), path: path)
        guard CRC32C.matches(CRC32C.checksum(dbytes), dirCrc) else {
            throw AuditError(.corrupt, "index directory checksum mismatch", path: path, offset: Int64(Self.headerSize))
        }
        var r = ByteReader(dbytes)
        var dir: [String: IndexDirEntry] = [:]
        let base = UInt64(Self.headerSize + dirLen)
        let sections = size - base
        do {
            for i in 0..<n {
                let ol = Int(try r.readU8())
                let org = String(decoding: try r.read(count: ol), as: UTF8.self)
                let e = IndexDirEntry(
                    org: org, count: try r.readU32(), firstOrgSeq: try r.readU64(), firstSeq: try r.readU64(),
                    lastSeq: try r.readU64(),
                    minTime: Int64(bitPattern: try r.readU64()), maxTime: Int64(bitPattern: try r.readU64()),
                    offset: try r.readU64(), length: try r.readU32(), rawLength: try r.readU32(), crc: try r.readU32())
                // Compare without adding, so that no field value can wrap around.
                guard e.count > 0, IndexSection.fits(count: e.count, rawLength: e.rawLength), e.firstSeq >= firstSeq,
                    e.firstSeq <= e.lastSeq, e.lastSeq < endSeq,
                    e.firstOrgSeq < SegmentFormat.maxSeq, Int(e.rawLength) <= SegmentFormat.maxBlockRawSize,
                    e.offset <= sections, UInt64(e.length) <= sections - e.offset, dir[org] == nil
                else {
                    throw AuditError(
                        .corrupt, "index directory entry \(i) (org \(org.prefix(64))) is out of range", path: path,
                        offset: Int64(Self.headerSize))
                }
                dir[org] = IndexDirEntry(
                    org: e.org, count: e.count, firstOrgSeq: e.firstOrgSeq, firstSeq: e.firstSeq, lastSeq: e.lastSeq,
                    minTime: e.minTime, maxTime: e.maxTime, offset: base + e.offset, length: e.length,
                    rawLength: e.rawLength, crc: e.crc)
            }
        } catch let e as AuditError {
            throw e
        } catch { throw AuditError(.corrupt, "index directory cut short", path: path, offset: Int64(Self.headerSize)) }
        self.dir = dir
    }

    package func hits(org: String) throws -> [IndexHit] {
        var out: [IndexHit] = []
        try visit(org: org) {
            out.append($0)
            return true
        }
        return out
    }

    /// Decodes `org`'s rows in sequence order, stopping when `body` returns false.
    func visit(org: String, _ body: (IndexHit) -> Bool) throws {
        try visitRows(org: org) { row, actions, actors in body(row.hit(actions: actions, actors: actors)) }
    }

    /// As `visit(org:_:)`, each row as stored (`IndexSection.visitRows`).
    func visitRows(org: String, _ body: (IndexRow, [String], [String]) -> Bool) throws {
        guard let e = dir[org] else { return }
        let fd = try FileOps.open(path, O_RDONLY)
        defer { close(fd) }
        let z = try FileOps.preadExact(fd, count: Int(e.length), at: Int64(e.offset), path: path)
        try IndexSection.visitRows(z, e, path: path, body)
    }

    /// `org`'s section bytes as stored (compressed), checked against its checksum.
    package func section(org: String) throws -> [UInt8]? {
        guard let e = dir[org] else { return nil }
        let fd = try FileOps.open(path, O_RDONLY)
        defer { close(fd) }
        let z = try FileOps.preadExact(fd, count: Int(e.length), at: Int64(e.offset), path: path)
        guard CRC32C.matches(CRC32C.checksum(z), e.crc) else {
            throw AuditError(
                .corrupt, "index section of org \(org) fails its checksum", path: path, offset: Int64(e.offset))
        }
        return z
    }
}
