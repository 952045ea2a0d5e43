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
/// Appends come from one thread; `flush`, `sync`, `mth`, `root` and proofs may be called from
/// any thread. An append stages its hashes in memory, where every read finds them at once,
/// updating the unfinished tiles in place; `flush` (or `sync`) writes them to the files (the
/// ledger does after each group, before its acks), and an append writes what is staged first
/// when that passes `maxStagedBytes`.
public final class TreeStore: @unchecked Sendable {
    let directory: String
    private let lock = NSLock()
    /// One flush at a time (the commit thread's, or the sealer's `sync`).
    private let flushLock = NSLock()
    private var files: [FileHandleRef] = []
    /// Hashes of each stored level, staged ones included.
    private var counts: [UInt64] = []
    private var pending: [[Hash]] = []
    /// Hashes of each stored level on file; the rest of `counts[k]` is `staged[k]`.
    private var written: [UInt64] = []
    /// Each level's hashes appended but not yet written, 32 bytes each, from `written[k]`.
    private var staged: [[UInt8]] = []
    private var stagedBytes = 0
    private var _size: UInt64 = 0
    /// Staged bytes past which an append writes them out first (32,768 leaves and their tiles).
    public static let maxStagedBytes = 1 << 20

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
        written.append(n)
        staged.append([])
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
            written.append(have)
            staged.append([])
            k += 1
        }
        for k in counts.indices {
            let tail = counts[k] % UInt64(ChainFormat.tileWidth)
            pending.append(tail == 0 ? [] : try readStored(k, from: counts[k] - tail, count: Int(tail)))
        }
    }

    /// Leaves appended and not yet written to the files.
    public var stagedLeaves: UInt64 { lock.withLock { counts.isEmpty ? 0 : counts[0] - written[0] } }

    /// Hashes `[from, from + count)` of stored level `k` (fewer at the level's end): those on
    /// file read from it, staged ones copied from memory.
    private func readStored(_ k: Int, from: UInt64, count: Int) throws(AuditError) -> [Hash] {
        let (onFile, file, tail): (UInt64, FileHandleRef?, [UInt8]) = lock.withLock {
            k < written.count ? (written[k], k < files.count ? files[k] : nil, staged[k]) : (0, nil, [])
        }
        let end = from + UInt64(count)
        var out: [Hash] = []
        out.reserveCapacity(count)
        if from < onFile, let f = file {
            let n = Int(min(end, onFile) - from)
            let raw = try FileOps.preadExact(f.fd, count: n * 32, at: Int64(from * 32), path: f.path)
            raw.withUnsafeBytes { b in
                for i in 0..<(raw.count / 32) {
                    out.append(Hash(raw: UnsafeRawBufferPointer(rebasing: b[(i * 32)..<(i * 32 + 32)])))
                }
            }
            guard raw.count == n * 32 else { return out }
        }
        guard end > onFile else { return out }
        let first = Int(max(from, onFile) - onFile)
        let last = min(Int(end - onFile), tail.count / 32)
        if first < last {
            tail.withUnsafeBytes { b in
                for i in first..<last {
                    out.append(Hash(raw: UnsafeRawBufferPointer(rebasing: b[(i * 32)..<(i * 32 + 32)])))
                }
            }
        }
        return out
    }

    /// Appends leaf hashes, completing higher stored levels as tiles fill: staged in memory,
    /// written by `flush`. Not durable until `sync`.
    ///
    /// All or nothing: when the staged hashes must be written first and that fails (a full
    /// disk, say), nothing is appended, so the same leaves can be appended again later.
    public func append(_ leaves: [Hash]) throws(AuditError) {
        guard !leaves.isEmpty else { return }
        if lock.withLock({ stagedBytes }) + leaves.count * 64 > Self.maxStagedBytes { try flush() }
        lock.lock()
        defer { lock.unlock() }
        func push(_ k: Int, _ h: Hash) {
            if k == counts.count {
                counts.append(0)
                written.append(0)
                pending.append([])
                staged.append([])
            }
            h.withBytes { staged[k].append(contentsOf: $0) }
            stagedBytes += 32
            counts[k] += 1
            pending[k].append(h)
            if pending[k].count == ChainFormat.tileWidth {
                let root = Merkle.root(pending[k][...])
                pending[k].removeAll(keepingCapacity: true)
                push(k + 1, root)
            }
        }
        for l in leaves { push(0, l) }
        _size = counts[0]
    }

    /// Writes the staged hashes to the files (a level's file is made with its first hash). A
    /// level that fails keeps its hashes staged for the next flush.
    public func flush() throws(AuditError) {
        flushLock.lock()
        defer { flushLock.unlock() }
        let levels: [(k: Int, from: UInt64, bytes: [UInt8], file: FileHandleRef?)] = lock.withLock {
            staged.indices.filter { !staged[$0].isEmpty }.map {
                ($0, written[$0], staged[$0], $0 < files.count ? files[$0] : nil)
            }
        }
        for l in levels {
            let f: FileHandleRef
            if let file = l.file {
                f = file
            } else {
                // Levels are made in order: every level below this one has a file by now.
                let path = directory + "/" + Self.fileName(l.k)
                f = FileHandleRef(fd: try FileOps.openOrCreate(path), path: path)
                try FileOps.truncate(f.fd, to: 0, path: path)
                lock.withLock { files.append(f) }
            }
            try FileOps.pwriteAll(f.fd, l.bytes[...], at: Int64(l.from * 32), path: f.path)
            lock.withLock {
                written[l.k] += UInt64(l.bytes.count / 32)
                staged[l.k].removeFirst(l.bytes.count)
                stagedBytes -= l.bytes.count
            }
        }
    }

    /// Makes every appended hash durable.
    public func sync() throws(AuditError) {
        try flush()
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

    /// Stored hash `i` of stored level `k` (level 8k), for the verifier.
    package func stored(_ k: Int, _ i: UInt64) throws(AuditError) -> Hash? {
        guard k < lock.withLock({ counts.count }), i < lock.withLock({ counts[k] }) else { return nil }
        return try readStored(k, from: i, count: 1).first
    }
}
