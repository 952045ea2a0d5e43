import AuditBase
import LogProofs

/// An audit entry carried beside the record whose change it recorded (format-spec.md §1): a
/// token in `tokens.json` names its `audit.token.created` entry by `seq` and carries the
/// entry's bytes and link, as an export line does (§9.3). The record is then checked against
/// the tree's leaf at `seq`, which stays in the hot tier when the entry's segment is archived
/// or purged: a record nobody audited cannot borrow an old date to excuse its missing entry.
public struct EntryBinding: Codable, Sendable, Equatable {
    /// The entry's sequence number.
    public var seq: UInt64
    /// Its canonical bytes (§5.1), as text.
    public var content: String
    /// Hex of its 113-byte link (§5.3).
    public var link: String

    /// The binding of a stored entry (whose link was rebuilt and matched its leaf).
    public init(_ e: StoredEntry) {
        seq = e.seq
        content = String(decoding: e.content, as: UTF8.self)
        link = e.link.bytes.hex
    }

    /// Checks that this is entry `seq` of the log whose leaf hashes `leaf` gives (`size` of
    /// them), and returns its content: the content's hash is in the link, the link names
    /// `seq`, and `SHA-256(0x00 || link)` is the tree's leaf at `seq`.
    public func open(leaf: (UInt64) throws -> Hash, size: UInt64) throws -> JSONValue {
        guard let bytes = [UInt8](hex: link), let l = try? Link(bytes: bytes) else {
            throw AuditError("its audit entry's link is not \(ChainFormat.linkSize) bytes of hex")
        }
        let c = Array(content.utf8)
        guard l.seq == seq, SHA256.hash(c) == l.contentHash else {
            throw AuditError("its audit entry (seq \(seq)) does not match its link: the content or seq was edited")
        }
        guard seq < size else { throw AuditError("its audit entry (seq \(seq)) is beyond the log (\(size) entries)") }
        guard try leaf(seq) == l.leafHash else {
            throw AuditError("its audit entry is not entry \(seq) of this log (the tree's leaf differs): made by hand")
        }
        do { return try Entry.decodeStored(c) } catch {
            throw AuditError("its audit entry (seq \(seq)) cannot be read: \(error)")
        }
    }
}
