import AuditBase

/// An entry read back, with everything needed to check it.
public struct StoredEntry: Sendable, Equatable {
    /// The org.
    public var org: String
    /// The canonical bytes.
    public var content: [UInt8]
    /// The reconstructed link (its leaf hash matched the stored tree).
    public var link: Link
    /// The leaf hash.
    public var hash: Hash
    /// Sequence number.
    public var seq: UInt64 { link.seq }

    /// An entry read back.
    public init(org: String, content: [UInt8], link: Link, hash: Hash) {
        self.org = org
        self.content = content
        self.link = link
        self.hash = hash
    }
}
