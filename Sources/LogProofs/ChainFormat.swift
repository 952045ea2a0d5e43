/// Every magic number, version and size of the chain, tree, index and checkpoint formats
/// (format-spec.md §5–§9).
public enum ChainFormat {
    /// Version byte that opens every link (format-spec.md §5.3).
    public static let linkVersion: UInt8 = 1
    /// version + seq + orgSeq + contentHash + prevHash + prevOrgHash.
    public static let linkSize = 1 + 8 + 8 + 32 + 32 + 32
    /// RFC 9162 §2.1.1 domain separation prefix of a leaf hash.
    public static let leafPrefix: UInt8 = 0x00
    /// RFC 9162 §2.1.1 domain separation prefix of an interior node hash.
    public static let nodePrefix: UInt8 = 0x01
    /// Levels between two stored tree levels (tiles of 2^8 = 256 hashes, as in C2SP tlog-tiles).
    public static let tileHeight = 8
    /// Hashes in a full tile.
    public static let tileWidth = 1 << tileHeight
    /// Largest canonical entry the log accepts.
    public static let maxEntrySize = 16 << 10
    /// Largest JSON frame a writer may send for one entry.
    public static let maxInputSize = 64 << 10
    /// The magic of an org index file: `AUDIDX01`.
    public static let indexMagic: [UInt8] = Array("AUDIDX01".utf8)
    /// The magic that ends an org index file: `AUDIDXEN`.
    public static let indexEndMagic: [UInt8] = Array("AUDIDXEN".utf8)
    /// The magic of the org-state snapshot: `AUDORGS1`.
    public static let orgStateMagic: [UInt8] = Array("AUDORGS1".utf8)
    /// Ed25519 algorithm byte of a signed-note key (golang.org/x/mod/sumdb/note).
    public static let noteAlgEd25519: UInt8 = 0x01
    /// size + offset, per entry of the checkpoint index.
    public static let checkpointIndexEntrySize = 8 + 8
    /// len + crc32c + size, before each note in the checkpoint log.
    public static let checkpointRecordHeaderSize = 4 + 4 + 8
}
