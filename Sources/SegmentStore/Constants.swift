/// Every magic number, version and size of the segment formats (format-spec.md §2).
public enum SegmentFormat {
    /// The first eight bytes of every segment file: `AUDITSEG`.
    public static let segmentMagic: [UInt8] = Array("AUDITSEG".utf8)
    /// The four bytes that open every block: `BLK1`.
    public static let blockMagic: [UInt8] = Array("BLK1".utf8)
    /// The eight bytes that open a sealed segment's footer: `AUDFOOT1`.
    public static let footerMagic: [UInt8] = Array("AUDFOOT1".utf8)
    /// The eight bytes that open a sealed segment's footer with a dictionary: `AUDFOOT2`.
    public static let footerMagicWithDictionary: [UInt8] = Array("AUDFOOT2".utf8)
    /// What a footer's first eight bytes say: whether a dictionary ends it (`AUDFOOT2`) or
    /// not (`AUDFOOT1`); nil when they open no footer.
    public static func footerHasDictionary(magic: some Collection<UInt8>) -> Bool? {
        if magic.elementsEqual(footerMagic) { return false }
        if magic.elementsEqual(footerMagicWithDictionary) { return true }
        return nil
    }
    /// The last eight bytes of a sealed segment: `AUDEND01`.
    public static let trailerMagic: [UInt8] = Array("AUDEND01".utf8)
    /// The only segment format version this code writes and reads.
    public static let version: UInt16 = 1

    /// magic + version + flags + reserved + segment number + first sequence number.
    public static let headerSize = 8 + 2 + 2 + 4 + 8 + 8
    /// magic + crc32c + payload length + raw length + record count + first seq + last seq + group key.
    public static let blockHeaderSize = 4 + 4 + 4 + 4 + 4 + 8 + 8 + 8
    /// footer offset + footer length + footer crc32c + magic.
    public static let trailerSize = 8 + 4 + 4 + 8
    /// offset + payload length + raw length + count + first seq + last seq + key, per block in the footer.
    public static let footerBlockEntrySize = 8 + 4 + 4 + 4 + 8 + 8 + 8

    /// Header flag: the file is an open (write-ahead) segment.
    public static let flagOpen: UInt16 = 0
    /// Header flag: the file is a sealed segment with a footer.
    public static let flagSealed: UInt16 = 1

    /// Largest raw (decompressed) size a block may declare; larger is corruption.
    public static let maxBlockRawSize = 64 << 20
    /// Smallest a record can be in a block's raw bytes: a one-byte sequence delta, the
    /// eight-byte key and a one-byte length. A block whose count does not fit its raw length
    /// is corrupt (and nothing is allocated from such a count).
    public static let minRecordSize = 1 + 8 + 1
    /// Most records in one segment: the store rotates before, a reader refuses more.
    public static let maxSegmentRecords: UInt64 = 1 << 22
    /// Largest single record payload the store accepts.
    public static let maxRecordSize = 1 << 20
    /// Sequence and segment numbers stay below 2^62: a larger one read from a file is
    /// corruption, and sums of two of them can never overflow.
    public static let maxSeq: UInt64 = 1 << 62
    /// Largest dictionary a sealed segment's footer may hold.
    public static let maxDictionarySize = 1 << 20
    /// Largest footer a reader will load.
    public static let maxFooterSize = 256 << 20
}
