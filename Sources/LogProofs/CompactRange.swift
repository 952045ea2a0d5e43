import AuditBase

/// The right edge of a Merkle tree being built leaf by leaf: O(log n) hashes, root at any time.
public struct CompactRange: Sendable {
    private var nodes: [(height: Int, hash: Hash)] = []
    /// Leaves appended.
    public private(set) var size: UInt64 = 0

    /// An empty range.
    public init() {}

    /// The compact range of the first `size` leaves, from its perfect subtrees left to right
    /// (heights strictly decreasing), as `CompactRange.nodes(of:)` returns them.
    public init(nodes: [(height: Int, hash: Hash)]) {
        self.nodes = nodes
        size = nodes.reduce(0) { $0 + (UInt64(1) << UInt64($1.height)) }
    }

    /// Appends a whole perfect subtree of `height`; the range's size must be a multiple of 2^height.
    public mutating func append(subtree hash: Hash, height: Int) {
        nodes.append((height, hash))
        size += UInt64(1) << UInt64(height)
        while nodes.count >= 2, nodes[nodes.count - 1].height == nodes[nodes.count - 2].height {
            let r = nodes.removeLast()
            let l = nodes.removeLast()
            nodes.append((l.height + 1, Merkle.nodeHash(l.hash, r.hash)))
        }
    }

    /// Appends a leaf hash.
    public mutating func append(_ leaf: Hash) {
        nodes.append((0, leaf))
        size += 1
        while nodes.count >= 2, nodes[nodes.count - 1].height == nodes[nodes.count - 2].height {
            let r = nodes.removeLast()
            let l = nodes.removeLast()
            nodes.append((l.height + 1, Merkle.nodeHash(l.hash, r.hash)))
        }
    }

    /// RFC 9162 root of the leaves so far.
    public func root() -> Hash {
        guard var r = nodes.last?.hash else { return Merkle.emptyRoot }
        for n in nodes.dropLast().reversed() { r = Merkle.nodeHash(n.hash, r) }
        return r
    }
}
