import AuditBase
import AuditEntries
import Foundation
import LogProofs
import SegmentStore

/// Writing a sealed segment's index file (format-spec.md §7.1), once, at its seal.
extension SealedIndex {
    /// `write` from rows that hold their strings.
    @discardableResult
    static func write(
        path: String, segment: UInt64, firstSeq: UInt64, endSeq: UInt64, byOrg: [(String, [IndexHit])]
    ) throws -> [IndexDirEntry] {
        try write(
            path: path, segment: segment, firstSeq: firstSeq, endSeq: endSeq,
            byOrg: byOrg.map { ($0.0, UnsealedRows($0.1)) })
    }

    /// Writes the file durably from each org's rows; returns each org's directory row, its
    /// offset from the file's start (where the org's posting list points).
    @discardableResult
    static func write(
        path: String, segment: UInt64, firstSeq: UInt64, endSeq: UInt64, byOrg: [(String, UnsealedRows)]
    ) throws -> [IndexDirEntry] {
        var dirEntries: [IndexDirEntry] = []
        var sections: [[UInt8]] = []
        var offset = UInt64(0)
        for (org, part) in byOrg.sorted(by: { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }) where !part.isEmpty {
            // One pass numbers the actions and actors (one lookup of each string a row); the
            // rows are read in place, never copied (a copy retains and releases their strings).
            var actions = Numbering()
            var actors = Numbering()
            let rows = part.hits
            var ids: [(action: Int, actor: Int)] = []
            ids.reserveCapacity(rows.count)
            var minTime = Int64.max
            var maxTime = Int64.min
            for i in rows.indices {
                ids.append((actions.number(rows[i].fields.action), actors.number(rows[i].fields.actor)))
                minTime = min(minTime, rows[i].fields.time)
                maxTime = max(maxTime, rows[i].fields.time)
            }
            var w = ByteWriter(capacity: rows.count * 8)
            for list in [actions.list, actors.list] {
                w.writeVarint(UInt64(list.count))
                for s in list {
                    w.writeVarint(UInt64(s.utf8.count))
                    w.write(s.utf8)
                }
            }
            var prevSeq = rows[0].seq
            var prevTime: Int64 = 0
            for (i, id) in zip(rows.indices, ids) {
                w.writeVarint(rows[i].seq - prevSeq)
                w.writeSignedVarint(rows[i].fields.time &- prevTime)
                w.write(rows[i].fields.category.code)
                w.write(rows[i].fields.outcome.code)
                w.writeVarint(UInt64(id.action))
                w.writeVarint(UInt64(id.actor))
                prevSeq = rows[i].seq
                prevTime = rows[i].fields.time
            }
            let z = try Zstd.compress(w.bytes[...], level: 3)
            dirEntries.append(
                IndexDirEntry(
                    org: org, count: UInt32(rows.count), firstOrgSeq: rows[0].orgSeq, firstSeq: rows[0].seq,
                    lastSeq: rows[rows.count - 1].seq, minTime: minTime, maxTime: maxTime,
                    offset: offset, length: UInt32(z.count), rawLength: UInt32(w.bytes.count), crc: CRC32C.checksum(z)))
            sections.append(z)
            offset += UInt64(z.count)
        }
        var d = ByteWriter()
        for e in dirEntries {
            d.write(UInt8(e.org.utf8.count))
            d.write(Array(e.org.utf8))
            d.write(e.count)
            d.write(e.firstOrgSeq)
            d.write(e.firstSeq)
            d.write(e.lastSeq)
            d.write(UInt64(bitPattern: e.minTime))
            d.write(UInt64(bitPattern: e.maxTime))
            d.write(e.offset)
            d.write(e.length)
            d.write(e.rawLength)
            d.write(e.crc)
        }
        var f = ByteWriter(capacity: headerSize + d.bytes.count + Int(offset))
        f.write(ChainFormat.indexMagic)
        f.write(segment)
        f.write(firstSeq)
        f.write(endSeq)
        f.write(UInt32(dirEntries.count))
        f.write(UInt32(d.bytes.count))
        f.write(CRC32C.checksum(d.bytes))
        f.write(d.bytes)
        for s in sections { f.write(s) }
        try FileOps.replaceFile(path, contents: f.bytes, mode: 0o444)
        let base = UInt64(headerSize + d.bytes.count)
        return dirEntries.map { e in
            var e = e
            e.offset += base
            return e
        }
    }
}

/// Strings numbered in the order first seen: an index section's action or actor table.
struct Numbering {
    private var ids: [String: Int] = [:]
    private(set) var list: [String] = []

    /// The number of `s`, given it the first time.
    mutating func number(_ s: String) -> Int {
        if let known = ids[s] { return known }
        ids[s] = list.count
        list.append(s)
        return list.count - 1
    }
}
