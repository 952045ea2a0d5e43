import AuditBase
import LogProofs

/// What a `TreeStore` proves: roots and RFC 9162 proofs from its stored hashes.
extension TreeStore {
    /// MTH of leaves `[lo, hi)`.
    public func mth(_ lo: UInt64, _ hi: UInt64) throws(AuditError) -> Hash {
        let n = hi - lo
        if n == 0 { return Merkle.emptyRoot }
        if n & (n - 1) == 0 && lo % n == 0 {
            let level = n.trailingZeroBitCount
            return try perfect(level: level, index: lo >> UInt64(level))
        }
        let k = Merkle.split(n)
        return Merkle.nodeHash(try mth(lo, lo + k), try mth(lo + k, hi))
    }

    /// The root at `size` (at most the current size).
    public func root(at size: UInt64) throws(AuditError) -> Hash {
        guard size <= self.size else {
            throw AuditError(.notFound, "tree size \(size) is beyond the log (size \(self.size))", path: directory)
        }
        return try mth(0, size)
    }

    /// RFC 9162 inclusion proof of `index` in the tree of `size`.
    public func inclusionProof(index: UInt64, size: UInt64) throws(AuditError) -> [Hash] {
        guard index < size, size <= self.size else {
            throw AuditError(
                .notFound, "no inclusion proof for index \(index) in size \(size) (log size \(self.size))",
                path: directory)
        }
        do { return try Merkle.inclusionProof(index: index, size: size) { try mth($0, $1) } } catch let e as AuditError
        { throw e } catch {
            throw AuditError(.io, "\(error)", path: directory)
        }
    }

    /// RFC 9162 consistency proof from `old` to `new`.
    public func consistencyProof(old: UInt64, new: UInt64) throws(AuditError) -> [Hash] {
        guard old <= new, new <= self.size else {
            throw AuditError(
                .notFound, "no consistency proof from \(old) to \(new) (log size \(self.size))", path: directory)
        }
        do { return try Merkle.consistencyProof(old: old, new: new) { try mth($0, $1) } } catch let e as AuditError {
            throw e
        } catch {
            throw AuditError(.io, "\(error)", path: directory)
        }
    }
}
