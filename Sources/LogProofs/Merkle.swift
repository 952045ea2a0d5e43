import AuditBase

/// RFC 9162 §2.1 Merkle tree hashing, proofs and proof verification (format-spec.md §6).
/// Pure functions: where the hashes come from is the caller's business.
public enum Merkle {
    /// `SHA-256(0x00 || data)`.
    public static func leafHash<C: Collection>(_ data: C) -> Hash where C.Element == UInt8 {
        var buf = [UInt8]()
        buf.reserveCapacity(data.count + 1)
        buf.append(ChainFormat.leafPrefix)
        buf.append(contentsOf: data)
        return SHA256.hash(buf)
    }

    /// `SHA-256(0x01 || left || right)`.
    public static func nodeHash(_ l: Hash, _ r: Hash) -> Hash {
        withUnsafeTemporaryAllocation(byteCount: 65, alignment: 8) { b in
            b[0] = ChainFormat.nodePrefix
            l.withBytes { (b.baseAddress! + 1).copyMemory(from: $0.baseAddress!, byteCount: 32) }
            r.withBytes { (b.baseAddress! + 33).copyMemory(from: $0.baseAddress!, byteCount: 32) }
            return SHA256.hash(b.baseAddress, 65)
        }
    }

    /// The hash of the empty tree, `SHA-256()`.
    public static let emptyRoot = SHA256.hash([UInt8]())

    /// The largest power of two strictly less than `n` (n ≥ 2).
    public static func split(_ n: UInt64) -> UInt64 {
        var k: UInt64 = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    /// MTH over leaf hashes, by the recursive definition (tests and small trees).
    public static func root(_ leaves: ArraySlice<Hash>) -> Hash {
        if leaves.isEmpty { return emptyRoot }
        if leaves.count == 1 { return leaves[leaves.startIndex] }
        let k = Int(split(UInt64(leaves.count)))
        let s = leaves.startIndex
        return nodeHash(root(leaves[s..<s + k]), root(leaves[(s + k)...]))
    }

    /// RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in the tree of `size` leaves, with
    /// `mth(lo, hi)` giving the hash of leaves `[lo, hi)`.
    public static func inclusionProof(
        index: UInt64, size: UInt64, mth: (UInt64, UInt64) throws -> Hash
    ) rethrows -> [Hash] {
        var proof: [Hash] = []
        func path(_ m: UInt64, _ lo: UInt64, _ hi: UInt64) throws {
            let n = hi - lo
            if n <= 1 { return }
            let k = split(n)
            if m < k {
                try path(m, lo, lo + k)
                proof.append(try mth(lo + k, hi))
            } else {
                try path(m - k, lo + k, hi)
                proof.append(try mth(lo, lo + k))
            }
        }
        try path(index, 0, size)
        return proof
    }

    /// RFC 9162 §2.1.4.1 consistency proof between sizes `old` and `new` (0 < old ≤ new).
    public static func consistencyProof(
        old: UInt64, new: UInt64, mth: (UInt64, UInt64) throws -> Hash
    ) rethrows -> [Hash] {
        var proof: [Hash] = []
        func sub(_ m: UInt64, _ lo: UInt64, _ hi: UInt64, _ b: Bool) throws {
            let n = hi - lo
            if m == n {
                if !b { proof.append(try mth(lo, hi)) }
                return
            }
            let k = split(n)
            if m <= k {
                try sub(m, lo, lo + k, b)
                proof.append(try mth(lo + k, hi))
            } else {
                try sub(m - k, lo + k, hi, false)
                proof.append(try mth(lo, lo + k))
            }
        }
        if old > 0 && old < new { try sub(old, 0, new, true) }
        return proof
    }

    /// RFC 9162 §2.1.3.2: does `proof` show `leaf` at `index` in the tree of `size` with `root`?
    public static func verifyInclusion(index: UInt64, size: UInt64, leaf: Hash, proof: [Hash], root: Hash) -> Bool {
        guard index < size else { return false }
        var fn = index
        var sn = size - 1
        var r = leaf
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// RFC 9162 §2.1.4.2: does `proof` show the tree of `new` (root `newRoot`) extends the tree
    /// of `old` (root `oldRoot`)?
    public static func verifyConsistency(old: UInt64, new: UInt64, oldRoot: Hash, newRoot: Hash, proof: [Hash]) -> Bool
    {
        if old == new { return proof.isEmpty && oldRoot == newRoot }
        guard old > 0, old < new, !proof.isEmpty else { return false }
        var path = proof
        if old & (old - 1) == 0 { path.insert(oldRoot, at: 0) }
        var fn = old - 1
        var sn = new - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && fr == oldRoot && sr == newRoot
    }
}
