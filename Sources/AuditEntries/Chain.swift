import AuditBase

/// An org's position in its chain after a prefix of the log (format-spec.md §5.3): how many of
/// its entries that prefix holds, and the sequence number and leaf hash of the newest. This is
/// the one home of the chain rule: the commit path asks it for the next entry's link, and every
/// reader and verifier (replay, reads, `auditctl verify` and `show`, bundles, exports) asks it
/// whether a stored entry continues the chain.
public struct OrgPosition: Sendable, Equatable {
    /// Entries of the org so far (the next one's `orgSeq`).
    public private(set) var count: UInt64
    /// Sequence number of the org's newest entry: nil before its first, or when only its hash
    /// is known (an archive bundle's `org_start`).
    public private(set) var lastSeq: UInt64?
    /// Leaf hash of the org's newest entry (zero before its first).
    public private(set) var lastHash: Hash

    /// An org with no entries yet.
    public static let start = OrgPosition(count: 0, lastSeq: nil, lastHash: .zero)

    /// The position after `count` entries, the newest being entry `lastSeq` with leaf `lastHash`.
    public init(count: UInt64, lastSeq: UInt64?, lastHash: Hash) {
        self.count = count
        self.lastSeq = lastSeq
        self.lastHash = lastHash
    }

    /// The stored payload header of the org's next entry, at `seq`: its position among the
    /// org's entries and the distance back to the org's previous one (0 for its first).
    public func header(at seq: UInt64) -> (orgSeq: UInt64, prevOrgDelta: UInt64) {
        (count, lastSeq.map { seq &- $0 } ?? 0)
    }

    /// The link of the org's next entry, at `seq`, after an entry whose leaf is `prev`.
    public func link(seq: UInt64, prev: Hash, contentHash: Hash) -> Link {
        Link(seq: seq, orgSeq: count, contentHash: contentHash, prevHash: prev, prevOrgHash: lastHash)
    }

    /// Checks that a stored entry at `seq` with payload header (`orgSeq`, `prevOrgDelta`) is the
    /// org's next, and returns its link. When only the hash of the org's newest entry is known,
    /// the distance back is checked for range only (the link's hash covers the rest).
    public func expect(
        seq: UInt64, orgSeq: UInt64, prevOrgDelta: UInt64, prev: Hash, contentHash: Hash
    ) throws(ChainError) -> Link {
        try expect(seq: seq, orgSeq: orgSeq, prevOrgDelta: prevOrgDelta)
        return link(seq: seq, prev: prev, contentHash: contentHash)
    }

    /// Checks that a stored entry at `seq` with payload header (`orgSeq`, `prevOrgDelta`) is the
    /// org's next, without building its link: for a caller that built the link elsewhere from
    /// the same header and checks that it used this position's hashes.
    public func expect(seq: UInt64, orgSeq: UInt64, prevOrgDelta: UInt64) throws(ChainError) {
        guard orgSeq == count else {
            throw ChainError(
                seq: seq,
                "is at position \(orgSeq) of its org's chain, expected \(count) (an entry of this org was deleted, inserted or reordered)"
            )
        }
        if let lastSeq {
            guard prevOrgDelta == seq &- lastSeq else {
                throw ChainError(
                    seq: seq, "says the org's previous entry is \(prevOrgDelta) back, expected \(seq &- lastSeq)")
            }
        } else if count == 0 {
            guard prevOrgDelta == 0 else {
                throw ChainError(seq: seq, "is its org's first entry but points \(prevOrgDelta) back")
            }
        } else {
            guard prevOrgDelta > 0, prevOrgDelta <= seq else {
                throw ChainError(seq: seq, "points \(prevOrgDelta) back, outside the log before it")
            }
        }
    }

    /// Checks that `link` (an exported entry's) is the org's next: its position, and its
    /// previous-org hash against the newest entry's.
    public func expect(_ link: Link) throws(ChainError) {
        guard link.orgSeq == count else {
            throw ChainError(seq: link.seq, "is at position \(link.orgSeq) of its org's chain, expected \(count)")
        }
        guard link.prevOrgHash == lastHash else {
            throw ChainError(
                seq: link.seq,
                count == 0
                    ? "is its org's first entry but has a previous org hash"
                    : "does not chain to the org's previous entry")
        }
    }

    /// The position after the org's next entry, at `seq` with leaf hash `leaf`.
    public func advanced(seq: UInt64, leaf: Hash) -> OrgPosition {
        OrgPosition(count: count + 1, lastSeq: seq, lastHash: leaf)
    }

    /// Moves past the org's next entry, at `seq` with leaf hash `leaf`.
    public mutating func advance(seq: UInt64, leaf: Hash) { self = advanced(seq: seq, leaf: leaf) }

    /// The position after `mark`, whose newest entry's leaf is `lastHash`.
    public init(_ mark: OrgMark, lastHash: Hash) {
        self.init(count: mark.count, lastSeq: mark.lastSeq, lastHash: lastHash)
    }

    /// Where the org stands, without the hash (nil before its first entry, or when only the
    /// hash is known).
    public var mark: OrgMark? { lastSeq.map { OrgMark(count: count, lastSeq: $0) } }
}

/// An org's position as the org-state snapshot, an index file and a seal record it (format-spec.md
/// §7.2): its entry count and its newest entry's sequence number; the leaf hash, which the
/// tree holds, makes it an `OrgPosition`.
public struct OrgMark: Sendable, Equatable {
    /// Entries of the org so far.
    public var count: UInt64
    /// Sequence number of the org's newest entry.
    public var lastSeq: UInt64

    /// A mark.
    public init(count: UInt64, lastSeq: UInt64) {
        self.count = count
        self.lastSeq = lastSeq
    }
}

extension Link {
    /// The link of stored entry `seq`, rebuilt from its payload header and content hash and
    /// the tree's leaves (`leaf(n)` is leaf `n`), refusing a header no committed entry can have.
    public static func stored(
        seq: UInt64, orgSeq: UInt64, prevOrgDelta: UInt64, contentHash: Hash,
        leaf: (UInt64) throws -> Hash
    ) throws -> Link {
        guard (prevOrgDelta == 0) == (orgSeq == 0), prevOrgDelta <= seq, orgSeq <= seq else {
            throw ChainError(
                seq: seq, "has an impossible org chain header (position \(orgSeq), previous entry \(prevOrgDelta) back)"
            )
        }
        return Link(
            seq: seq, orgSeq: orgSeq, contentHash: contentHash, prevHash: seq > 0 ? try leaf(seq - 1) : .zero,
            prevOrgHash: prevOrgDelta > 0 ? try leaf(seq - prevOrgDelta) : .zero)
    }
}

/// A stored or exported entry that does not continue its chain.
public struct ChainError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The entry.
    public var seq: UInt64
    /// What is wrong with it, completing "entry N …".
    public var problem: String

    /// Entry `seq` breaks its chain: `problem`.
    public init(seq: UInt64, _ problem: String) {
        self.seq = seq
        self.problem = problem
    }

    /// "entry N …".
    public var description: String { "entry \(seq) \(problem)" }
}
