import AuditBase
import Foundation
import LogProofs

/// One tail object (format-spec.md §12.6): bytes `[offset, endOffset)` of an unsealed
/// segment's file, exactly as written there (a header when `offset` is 0, then whole blocks,
/// each with its CRC-32C), preceded by a note signed with the log's key that names them:
///
///     object := noteLength:u32 note[noteLength] bytes
///     note text := "auditlog tail\n" origin "\n" segment "\n" offset " " endOffset "\n"
///                  first " " end "\n" hex(SHA-256(bytes)) "\n"
///
/// The signature makes every object stand on its own: nobody without the key can make one a
/// recovery or a replica accepts, and a copy with edited bytes fails its hash.
public struct TailObject: Sendable, Equatable {
    /// The segment number.
    public var segment: UInt64
    /// Where the bytes start in the segment's file.
    public var offset: Int64
    /// The first entry the bytes hold.
    public var first: UInt64
    /// One past the last.
    public var end: UInt64
    /// The bytes.
    public var bytes: [UInt8]

    /// Bytes `bytes` of segment `segment`'s file, from `offset`, holding entries `[first, end)`.
    public init(segment: UInt64, offset: Int64, first: UInt64, end: UInt64, bytes: [UInt8]) {
        self.segment = segment
        self.offset = offset
        self.first = first
        self.end = end
        self.bytes = bytes
    }

    /// One past the last byte, in the segment's file.
    public var endOffset: Int64 { offset + Int64(bytes.count) }

    /// The most a tail object may hold: a reader never buffers more for one.
    public static let maxBytes = 64 << 20
    static let maxNote = 4096

    /// The note's text.
    func noteText(origin: String) -> String {
        "auditlog tail\n\(origin)\n\(segment)\n\(offset) \(endOffset)\n\(first) \(end)\n\(SHA256.hash(bytes).hex)\n"
    }

    /// The object's bytes, its note signed by `sign`.
    public func encoded(origin: String, sign: (String) throws -> String) throws -> [UInt8] {
        let note = Array(try sign(noteText(origin: origin)).utf8)
        var w = ByteWriter(capacity: 4 + note.count + bytes.count)
        w.write(UInt32(note.count))
        w.write(note)
        w.write(bytes)
        return w.bytes
    }

    /// Parses and checks object `data` (named `name`, for errors): its note's signature under
    /// `verifier`, every field, and the bytes' hash. Throws a `BundleError`-like failure naming it.
    public static func decode(_ data: [UInt8], name: String, verifier: LogKeys) throws -> TailObject {
        func bad(_ why: String) -> TailObjectError { TailObjectError(object: name, reason: why) }
        guard data.count >= 4, data.count <= 4 + maxNote + maxBytes else { throw bad("has \(data.count) bytes") }
        var r = ByteReader(data, range: 0..<4)
        let len = Int(try r.readU32())
        guard len > 0, len <= maxNote, 4 + len <= data.count else {
            throw bad("its note length \(len) is out of range")
        }
        let note = String(decoding: data[4..<(4 + len)], as: UTF8.self)
        let text: String
        do { text = try verifier.open(note) } catch { throw bad("its signature does not verify: \(error)") }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count == 7, lines[0] == "auditlog tail", lines[6].isEmpty else {
            throw bad("its note is not a tail note")
        }
        guard lines[1] == verifier.name else { throw bad("it is for log \(lines[1]), not \(verifier.name)") }
        let offsets = lines[3].split(separator: " ")
        let seqs = lines[4].split(separator: " ")
        guard let seg = UInt64(lines[2]), offsets.count == 2, seqs.count == 2, let off = Int64(offsets[0]),
            let endOff = Int64(offsets[1]), let first = UInt64(seqs[0]), let end = UInt64(seqs[1]), off >= 0,
            endOff > off, first <= end
        else { throw bad("its note's fields are malformed") }
        let bytes = Array(data[(4 + len)...])
        guard Int64(bytes.count) == endOff - off else {
            throw bad("holds \(bytes.count) bytes, its note says \(endOff - off)")
        }
        guard SHA256.hash(bytes).hex == lines[5] else {
            throw bad("its bytes do not hash to what its note signs (altered)")
        }
        return TailObject(segment: seg, offset: off, first: first, end: end, bytes: bytes)
    }
}

/// A tail object that cannot be used, and why.
public struct TailObjectError: Error, Sendable, CustomStringConvertible {
    /// Its name in the bucket.
    public var object: String
    /// What is wrong.
    public var reason: String
    public var description: String { "\(object): \(reason)" }
}
