import AuditBase

/// The 32-byte header that opens every segment file (format-spec.md §2.1).
///
///     header := "AUDITSEG" version:u16 flags:u16 reserved:u32 segment:u64 firstSeq:u64
public struct SegmentHeader: Sendable, Equatable {
    /// Format version (1).
    public var version: UInt16 = SegmentFormat.version
    /// 0 for an open segment, 1 for a sealed one.
    public var flags: UInt16
    /// The segment's number, counting from 0.
    public var segment: UInt64
    /// The first sequence number the segment holds.
    public var firstSeq: UInt64

    /// A header for `segment` starting at `firstSeq`.
    public init(flags: UInt16, segment: UInt64, firstSeq: UInt64) {
        self.flags = flags
        self.segment = segment
        self.firstSeq = firstSeq
    }

    /// The 32 bytes.
    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: SegmentFormat.headerSize)
        w.write(SegmentFormat.segmentMagic)
        w.write(version)
        w.write(flags)
        w.write(UInt32(0))
        w.write(segment)
        w.write(firstSeq)
        return w.bytes
    }

    /// Parses and checks a header read from `path`.
    public static func parse(_ bytes: [UInt8], path: String) throws(AuditError) -> SegmentHeader {
        var r = ByteReader(bytes)
        do {
            guard Array(try r.read(count: 8)) == SegmentFormat.segmentMagic else {
                throw AuditError(.corrupt, "not a segment file (bad magic)", path: path, offset: 0)
            }
            let version = try r.readU16()
            guard version == SegmentFormat.version else {
                throw AuditError(
                    .corrupt,
                    "segment format version \(version) is not supported (this build reads \(SegmentFormat.version))",
                    path: path, offset: 8)
            }
            let flags = try r.readU16()
            guard flags == SegmentFormat.flagOpen || flags == SegmentFormat.flagSealed else {
                throw AuditError(
                    .corrupt, "segment header flags \(flags) are neither open (0) nor sealed (1)", path: path,
                    offset: 10)
            }
            guard try r.readU32() == 0 else {
                throw AuditError(.corrupt, "segment header's reserved field is not zero", path: path, offset: 12)
            }
            var h = SegmentHeader(flags: flags, segment: try r.readU64(), firstSeq: try r.readU64())
            h.version = version
            guard h.segment < SegmentFormat.maxSeq, h.firstSeq < SegmentFormat.maxSeq else {
                throw AuditError(
                    .corrupt, "segment header names segment \(h.segment) at sequence \(h.firstSeq), beyond 2^62",
                    path: path, offset: 16)
            }
            return h
        } catch let e as AuditError {
            throw e
        } catch {
            throw AuditError(.corrupt, "segment header is cut short", path: path, offset: 0)
        }
    }
}
