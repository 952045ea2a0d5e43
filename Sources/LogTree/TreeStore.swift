import AuditBase
import AuditEntries
import Foundation
import LogProofs

#if canImport(Glibc)
import Glibc
#endif

/// The Merkle tree on disk (format-spec.md §6.2), modelled on C2SP tlog-tiles: the file
/// `level-NN.hashes` holds, for NN = 0, 8, 16, …, the hashes of every complete perfect subtree
/// of height NN, 32 bytes each, in order (level 0 = leaf hashes). Hashes of the levels in
/// between are recomputed from at most 128 stored ones. Memory holds only the unfinished
/// tail of each stored level (under 256 hashes apiece), whatever the tree's size.
///
/// Appends come from one thread; `mth`, `root` and proofs may be called from any thread.
public final class TreeStore: @unchecked Sendable {
    let directory: String
    private let lock = NSLock()
    private var files: [FileHandleRef] = []
    private var counts: [UInt64] = []
    private var pending: [[Hash]] = []
    private var _size: UInt64 = 0

    /// Number of leaves.
    public var size: UInt64 { lock.withLock { _size } }

    static func fileName(_ k: Int) -> String {
        let n = k * ChainFormat.tileHeight
        return "level-" + (n < 10 ? "0" : "") + String(n) + ".hashes"
    }

    /// Opens the tree in `directory`, cut back to at most `maxSize` leaves; missing hashes of
    /// higher levels are recomputed from the level below.
    public init(directory: String, maxSize: UInt64 = .max, readOnly: Bool = false) throws(AuditError) {
        self.directory = directory
        if !readOnly { try FileOps.makeDirectory(directory) }
        let p0 = directory + "/" + Self.fileName(0)
        let fd0 = readOnly ? try FileOps.open(p0, O_RDONLY) : try FileOps.openOrCreate(p0)
        files.append(FileHandleRef(fd: fd0, path: p0))
        let n = min(UInt64(try FileOps.size(fd0, path: p0)) / 32, maxSize)
        if !readOnly { try FileOps.truncate(fd0, to: Int64(n * 32), path: p0) }
        counts.append(n)
        _size = n
        var k = 1
        while true {
            let want = n >> UInt64(k * ChainFormat.tileHeight)
            let path = directory + "/" + Self.fileName(k)
            if want == 0 {
                if !readOnly { try FileOps.unlink(path) }
                break
            }
            if readOnly && !FileOps.exists(path) { break }
            let fd = readOnly ? try FileOps.open(path, O_RDONLY) : try FileOps.openOrCreate(path)
            files.append(FileHandleRef(fd: fd, path: path))
            var have = min(UInt64(try FileOps.size(fd, path: path)) / 32, want)
            if !readOnly { try FileOps.truncate(fd, to: Int64(have * 32), path: path) }
            while have < want && !readOnly {
                let below = try readStored(k - 1, from: have << 8, count: 256)
                try FileOps.pwriteAll(fd, Merkle.root(below[...]).bytes[...], at: Int64(have * 32), path: path)
                have += 1
            }
            counts.append(have)
            k += 1
        }
        for k in counts.indices {
            let tail = counts[k] % UInt64(ChainFormat.tileWidth)
            pending.append(tail == 0 ? [] : try readStored(k, from: counts[k] - tail, count: Int(tail)))
        }
    }

    private func readStored(_ k: Int, from: UInt64, count: Int) throws(AuditError) -> [Hash] {
        let f = files[k]
        let raw = try FileOps.preadExact(f.fd, count: count * 32, at: Int64(from * 32), path: f.path)
        let n = raw.count / 32
        return raw.withUnsafeBytes { b in
            (0..<n).map { Hash(raw: UnsafeRawBufferPointer(rebasing: b[($0 * 32)..<($0 * 32 + 32)])) }
        }
    }

    /// Appends leaf hashes, completing higher stored levels as tiles fill. Not durable until `sync`.
    ///
    /// All or nothing: every hash the append stores is worked out first, then written, and
    /// only when every write succeeded does the tree grow. A failed append (a full disk, say)
    /// leaves the tree as it was, so the same leaves can be appended again later.
    public func append(_ leaves: [Hash]) throws(AuditError) {
        guard !leaves.isEmpty else { return }
        var (counts, pending, fileCount) = lock.withLock { (self.counts, self.pending, self.files.count) }
        let start = counts
        var out: [[UInt8]] = Array(repeating: [], count: counts.count)
        func push(_ k: Int, _ h: Hash) {
            if k == counts.count {
                counts.append(0)
                pending.append([])
                out.append([])
            }
            h.withBytes { out[k].append(contentsOf: $0) }
            counts[k] += 1
            pending[k].append(h)
            if pending[k].count == ChainFormat.tileWidth {
                let root = Merkle.root(pending[k][...])
                pending[k].removeAll(keepingCapacity: true)
                push(k + 1, root)
            }
        }
        for l in leaves { push(0, l) }
        var newFiles: [FileHandleRef] = []
        for k in out.indices where !out[k].isEmpty {
            let f: FileHandleRef
            if k < fileCount {
                f = lock.withLock { files[k] }
            } else {
                let path = directory + "/" + Self.fileName(k)
                f = FileHandleRef(fd: try FileOps.openOrCreate(path), path: path)
                try FileOps.truncate(f.fd, to: 0, path: path)
                newFiles.append(f)
                fileCount += 1
            }
            let from = k < start.count ? start[k] : 0
            try FileOps.pwriteAll(f.fd, out[k][...], at: Int64(from * 32), path: f.path)
        }
        lock.withLock {
            files.append(contentsOf: newFiles)
            self.counts = counts
            self.pending = pending
            _size = counts[0]
        }
    }

    /// Makes every appended hash durable.
    public func sync() throws(AuditError) {
        for f in lock.withLock({ files }) { try FileOps.fdatasync(f.fd, path: f.path) }
    }

    /// The hash of the perfect subtree of height `level` whose leftmost leaf is `index << level`.
    public func perfect(level: Int, index: UInt64) throws(AuditError) -> Hash {
        let k = level / ChainFormat.tileHeight
        let r = level % ChainFormat.tileHeight
        let from = index << UInt64(r)
        let n = 1 << r
        var hashes: [Hash]
        let snapshot: (UInt64, [Hash])? = lock.withLock {
            guard k < counts.count, from + UInt64(n) <= counts[k] else { return nil }
            return (counts[k] - UInt64(pending[k].count), pending[k])
        }
        guard let (pendingStart, tail) = snapshot else {
            throw AuditError(
                .notFound, "subtree at level \(level) index \(index) is beyond the tree (size \(size))", path: directory
            )
        }
        if from >= pendingStart {
            hashes = Array(tail[Int(from - pendingStart)..<Int(from - pendingStart) + n])
        } else {
            hashes = try readStored(k, from: from, count: n)
            guard hashes.count == n else {
                throw AuditError(.corrupt, "tree file is short", path: files[k].path, offset: Int64(from * 32))
            }
        }
        while hashes.count > 1 {
            var next: [Hash] = []
            next.reserveCapacity(hashes.count / 2)
            var i = 0
            while i < hashes.count {
                next.append(Merkle.nodeHash(hashes[i], hashes[i + 1]))
                i += 2
            }
            hashes = next
        }
        return hashes[0]
    }

    /// The leaf hash at `index`.
    public func leaf(_ index: UInt64) throws(AuditError) -> Hash { try perfect(level: 0, index: index) }

    /// Leaf hashes `[from, from + count)` straight from level 0.
    public func leaves(from: UInt64, count: Int) throws(AuditError) -> [Hash] {
        guard from + UInt64(count) <= size else {
            throw AuditError(.notFound, "leaves beyond the tree", path: directory)
        }
        return try readStored(0, from: from, count: count)
    }

    /// The leaf hashes at `indices` (all below the size), read in runs: indices less than 64
    /// leaves apart share one read, so a page of entries and the leaves their links name cost
    /// a few reads instead of three each.
    public func leaves(at indices: [UInt64]) throws(AuditError) -> [UInt64: Hash] {
        let sorted = Array(Set(indices)).sorted()
        var out: [UInt64: Hash] = [:]
        out.reserveCapacity(sorted.count)
        var i = 0
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count, sorted[j + 1] - sorted[j] <= 64, sorted[j + 1] - sorted[i] < 4096 { j += 1 }
            let from = sorted[i]
            let hashes = try leaves(from: from, count: Int(sorted[j] - from) + 1)
            for k in i...j { out[sorted[k]] = hashes[Int(sorted[k] - from)] }
            i = j + 1
        }
        return out
    }

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

    /// Stored hash `i` of stored level `k` (level 8k), for the verifier.
    package func stored(_ k: Int, _ i: UInt64) throws(AuditError) -> Hash? {
        guard k < lock.withLock({ counts.count }), i < lock.withLock({ counts[k] }) else { return nil }
        return try readStored(k, from: i, count: 1).first
    }
}
