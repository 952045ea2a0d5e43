import AuditBase
import LogProofs

extension CompactRange {
    /// The perfect subtrees covering leaves `[0, size)` (left side of a range proof).
    public static func nodes(of size: UInt64, tree: TreeStore) throws -> [(height: Int, hash: Hash)] {
        var out: [(height: Int, hash: Hash)] = []
        var pos: UInt64 = 0
        for h in stride(from: 63, through: 0, by: -1) where size & (UInt64(1) << UInt64(h)) != 0 {
            out.append((h, try tree.perfect(level: h, index: pos >> UInt64(h))))
            pos += UInt64(1) << UInt64(h)
        }
        return out
    }

    /// The aligned perfect subtrees covering leaves `[from, to)` (right side of a range proof).
    public static func subtrees(from: UInt64, to: UInt64, tree: TreeStore) throws -> [(height: Int, hash: Hash)] {
        var out: [(height: Int, hash: Hash)] = []
        var pos = from
        while pos < to {
            var h = 0
            while h < 63, pos % (UInt64(1) << UInt64(h + 1)) == 0, pos + (UInt64(1) << UInt64(h + 1)) <= to { h += 1 }
            out.append((h, try tree.perfect(level: h, index: pos >> UInt64(h))))
            pos += UInt64(1) << UInt64(h)
        }
        return out
    }
}
