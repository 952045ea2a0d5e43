import Archive
import AuditBase
import AuditEntries
import AuditIndex
import ChainIndex
import Foundation
import LogProofs
import LogTree
import SegmentStore

/// What a recovery from the bucket found and built.
public struct BucketRecoveryReport: Sendable, CustomStringConvertible {
    /// Segments taken from bundles.
    public var bundles = 0
    /// Segments rebuilt from tail objects, and how many objects that took.
    public var tailSegments = 0
    public var tailObjects = 0
    /// Entries recovered.
    public var entries: UInt64 = 0
    /// The newest checkpoint the bucket held (every entry it covers was recovered).
    public var checkpointSize: UInt64?
    /// Entries recovered beyond that checkpoint (acknowledged, carried by signed tail objects).
    public var beyondCheckpoint: UInt64 { checkpointSize.map { entries > $0 ? entries - $0 : 0 } ?? entries }
    /// The largest size of a checkpoint a bundle embeds beyond the recovered entries (put while
    /// the bucket caught up after an outage; never published): entries up to it were lost.
    public var unpublishedBeyond: UInt64?
    /// When the newest recovered entry was received (ms since the epoch), if any.
    public var newestReceivedAt: Int64?
    /// A note when the signer state beside the key was ahead of the bucket and was rewound
    /// to the newest checkpoint the bucket held (those checkpoints were never published).
    public var signerNote: String?
    /// Seconds the recovery took.
    public var seconds: Double = 0

    public var description: String {
        var s =
            "recovered \(entries) entries: \(bundles) segment(s) from bundles, \(tailSegments) from \(tailObjects) tail object(s)"
        s += "; newest checkpoint in the bucket: " + (checkpointSize.map { "size \($0)" } ?? "none")
        s += ", \(beyondCheckpoint) acknowledged entries after it (signed tail objects)"
        if let t = newestReceivedAt {
            let age = Date().timeIntervalSince1970 - Double(t) / 1000
            s +=
                "; the newest entry was received at \(Timestamp.format(t)) (\(String(format: "%.1f", max(0, age))) s ago)"
        }
        s += "; \(String(format: "%.1f", seconds)) s, \(Int(Double(entries) / max(seconds, 0.001))) entries/s"
        if let u = unpublishedBeyond {
            s +=
                "\na bundle embeds an unpublished checkpoint at size \(u): entries \(entries)..<\(u) were acknowledged in local mode and reached no object before the loss"
        }
        if let n = signerNote { s += "\n" + n }
        return s
    }
}

/// Builds a working data directory from the bucket alone (format-spec.md §12.6): the sealed
/// segments from their bundles, the unsealed ones from their tail objects, then the ledger's
/// own replay re-derives every chain, the tree and the index from the entries, and every
/// checkpoint the bucket holds (in bundles and beside them) must be the rebuilt tree's.
/// Anything that does not verify stops it, named; nothing is half-built: on failure the
/// directory it made is removed.
public enum BucketRecovery {
    /// Recovers into `dataDir` (which must not exist or be empty) from `bucket`, opening the
    /// log with `signer` (the log's key, at `keyPath`, whose signer state it keeps right).
    public static func recover(
        bucket: S3Backend, into dataDir: String, signer: NoteSigner, keyPath: String?,
        progress: ((String) -> Void)? = nil
    ) throws -> BucketRecoveryReport {
        let started = Date()
        if FileOps.exists(dataDir), !(try FileOps.list(dataDir)).isEmpty {
            throw AuditError(
                .invalidArgument,
                "\(dataDir) is not empty: recovery builds a new data directory; give a path that does not exist yet")
        }
        let verifier = try keys(in: bucket, signer: signer)
        let dirs = DataDirectory(dataDir)
        try FileOps.makeDirectory(dataDir)
        try FileOps.makeDirectory(dirs.segments)
        do {
            var report = BucketRecoveryReport()
            var checkpoints: [SignedCheckpoint] = []
            var fromBucket: Set<UInt64> = []
            let bundles = Set(try bucket.list())
            // One listing for every tail object: name → its first version.
            let tails = try bucket.firstVersions(under: "tail/")
            var tailsOf: [UInt64: [String]] = [:]
            for name in tails.keys {
                if let t = BucketLayout.parseTail(name) { tailsOf[t.segment, default: []].append(name) }
            }
            var segment: UInt64 = 0
            var expected: UInt64 = 0
            var fromTail: [UInt64] = []
            // What the bundles so far hold: their leaves (the tree below the tail) and each org's position.
            try FileOps.makeDirectory(dirs.index)
            let tree = try TreeStore(directory: dirs.tree)
            var orgs: [String: OrgMark] = [:]
            while true {
                let name = BundleFiles.name(segment)
                if bundles.contains(name) {
                    // Verified whole (signature, hashes, every entry, both chains from the
                    // recorded start, leaves to the checkpoint's root, the index file), and
                    // continuing the log so far; then its files are the segment's, as written.
                    let dir = try bucket.path(of: name)
                    let m = try ArchiveBundle.verify(directory: dir, verifier: verifier)
                    try FileOps.createFile(
                        dirs.segments + "/" + SegmentNames.sealed(segment),
                        contents: try ArchiveFiles.read(dir + "/" + BundleFiles.segment), mode: 0o440)
                    if fromTail.isEmpty {
                        try continues(
                            m, bundle: bucket.objectKey(name), segment: segment, expected: expected, tree: tree,
                            orgs: orgs)
                        try FileOps.createFile(
                            dirs.index + "/" + OrgIndex.fileName(segment),
                            contents: try ArchiveFiles.read(dir + "/" + BundleFiles.index), mode: 0o440)
                        let leaves = try ArchiveFiles.read(dir + "/" + BundleFiles.leaves)
                        try tree.append(
                            stride(from: 0, to: leaves.count, by: 32).compactMap { Hash(bytes: leaves[$0..<($0 + 32)]) }
                        )
                        for o in m.orgs { orgs[o.org] = OrgMark(count: o.count_after, lastSeq: o.last_seq) }
                    } else {
                        // After a segment rebuilt from its tail, the ledger's replay continues the
                        // chains (and writes the index files) from there on.
                        guard m.segment == segment, m.first_seq == expected else {
                            throw BundleError(
                                file: bucket.objectKey(name),
                                reason:
                                    "holds segment \(m.segment) from entry \(m.first_seq); the log needs segment \(segment) from entry \(expected)"
                            )
                        }
                    }
                    if let (_, cp) = try? ArchiveBundle.checkSigned(directory: dir, verifier: verifier) {
                        checkpoints.append(cp)
                    }
                    bucket.evictCache(bundle: name)
                    report.bundles += 1
                    expected = m.end_seq
                } else {
                    let (bytes, end, objects) = try tail(
                        bucket: bucket, names: tailsOf[segment] ?? [], versions: tails, segment: segment,
                        from: expected, verifier: verifier)
                    guard let bytes else { break }
                    try FileOps.createFile(
                        dirs.segments + "/" + SegmentNames.open(segment), contents: bytes, mode: 0o640)
                    fromTail.append(segment)
                    report.tailSegments += 1
                    report.tailObjects += objects
                    // An unsealed segment is the last one unless the next one starts where it ends.
                    let continues =
                        bundles.contains(BundleFiles.name(segment + 1))
                        || (tailsOf[segment + 1] ?? []).contains { BucketLayout.parseTail($0)?.first == end }
                    expected = end
                    if !continues { break }
                }
                progress?("segment \(segment): entries up to \(expected)")
                segment += 1
            }
            guard report.bundles + report.tailSegments > 0 else {
                throw AuditError(
                    .notFound,
                    "\(bucket.client.place) holds no bundle and no tail object of segment 0: there is nothing of this log to recover (check the bucket and prefix)"
                )
            }
            try tree.sync()
            // A segment rebuilt from its tail that others follow was sealed on the lost machine
            // (only the last one was open): sealed here as it was there.
            let last = UInt64(report.bundles + report.tailSegments) - 1
            for n in fromTail where n < last {
                _ = try SegmentStore.sealCopy(directory: dirs.segments, segment: n)
            }
            try FileOps.fsyncDirectory(dirs.segments)
            for name in try bucket.objects(under: BucketLayout.checkpointFolder)
            where BucketLayout.parseCheckpoint(name) != nil {
                guard let bytes = try bucket.firstVersionBytes(name) else { continue }
                do {
                    let cp = try SignedCheckpoint(note: String(decoding: bytes, as: UTF8.self), verifier: verifier)
                    checkpoints.append(cp)
                    fromBucket.insert(cp.checkpoint.size)
                } catch {
                    throw TailObjectError(
                        object: bucket.objectKey(name), reason: "not a checkpoint of this log: \(error)")
                }
            }
            checkpoints.sort { $0.checkpoint.size < $1.checkpoint.size }
            progress?("replaying \(expected) entries")

            // The ledger's replay re-derives both chains, the tree and the index from the entries.
            var options = LedgerOptions()
            options.background = false
            options.retired = ArchiveTier()
            options.keys = verifier
            let ledger = try Ledger(directory: dataDir, signer: signer, options: options)
            // A bundle put while the bucket caught up after an outage may embed a checkpoint
            // covering entries the bucket never got (format-spec.md §12.6): it was never
            // published, and the entries past the recovered log are the ones lost. Every other
            // checkpoint must be the rebuilt tree's.
            let published = fromBucket
            for cp in checkpoints {
                if cp.checkpoint.size > ledger.size, !published.contains(cp.checkpoint.size) {
                    report.unpublishedBeyond = max(report.unpublishedBeyond ?? 0, cp.checkpoint.size)
                    continue
                }
                do { try ledger.adopt(cp) } catch {
                    _ = try? ledger.close()
                    throw AuditError(
                        .failed,
                        "the bucket holds a checkpoint at size \(cp.checkpoint.size) that the \(ledger.size) recovered entries do not match (\((error as? AuditError)?.message ?? "\(error)")): objects are missing from the bucket or were altered there; nothing was recovered"
                    )
                }
            }
            report.entries = ledger.size
            report.checkpointSize = checkpoints.last { $0.checkpoint.size <= ledger.size }?.checkpoint.size
            if ledger.size > 0 {
                report.newestReceivedAt = (try? ledger.entry(seq: ledger.size - 1)).flatMap {
                    Entry.indexFields(ofStored: $0.content)?.fields.time
                }
            }
            _ = try ledger.close()
            if let keyPath {
                report.signerNote = try keepSignerState(
                    SignerState.path(forKey: keyPath), ledger: ledger, bucketNewest: checkpoints.last)
            }
            report.seconds = Date().timeIntervalSince(started)
            return report
        } catch {
            try? FileManager.default.removeItem(atPath: dataDir)
            throw error
        }
    }

    /// Checks that verified bundle `m` continues the log rebuilt so far: its segment and first
    /// entry, the hash of the entry before it, and every org's position at its start.
    static func continues(
        _ m: BundleManifest, bundle: String, segment: UInt64, expected: UInt64, tree: TreeStore,
        orgs: [String: OrgMark]
    ) throws {
        func refuse(_ why: String) -> BundleError { BundleError(file: bundle, reason: why) }
        guard m.segment == segment, m.first_seq == expected, m.end_seq > m.first_seq else {
            throw refuse(
                "holds segment \(m.segment), entries \(m.first_seq)..<\(m.end_seq); the log needs segment \(segment) from entry \(expected)"
            )
        }
        let prev = expected > 0 ? try tree.leaf(expected - 1) : .zero
        guard m.prev_hash == prev.hex else {
            throw refuse("does not continue the entry before it (prev_hash \(m.prev_hash.prefix(16))…)")
        }
        for (org, start) in m.org_start {
            let want = orgs[org]
            let count = want?.count ?? 0
            let last = try want.map { try tree.leaf($0.lastSeq).hex } ?? Hash.zero.hex
            guard start.count == count, start.last_hash == last else {
                throw refuse(
                    "org \(org) starts at \(start.count) entries, but the log before it holds \(count) of that org: the chain does not continue"
                )
            }
        }
    }

    /// The bytes of segment `n`'s file rebuilt from its tail objects `names`, from entry
    /// `from` on: a chain of objects, each starting where the one before ended (the first at
    /// byte 0), each checked. Nil when no object starts at `from`.
    static func tail(
        bucket: S3Backend, names: [String], versions: [String: String], segment n: UInt64, from: UInt64,
        verifier: LogKeys
    ) throws -> ([UInt8]?, UInt64, Int) {
        var starts: [UInt64: [(String, UInt64)]] = [:]
        for name in names {
            guard let t = BucketLayout.parseTail(name), t.segment == n else { continue }
            starts[t.first, default: []].append((name, t.end))
        }
        // The chain, from the names alone: at each entry the longest object that starts there
        // (a retry may have put a shorter one too).
        var chain: [(name: String, first: UInt64, end: UInt64)] = []
        var at = from
        while let best = starts[at]?.max(by: { $0.1 < $1.1 }), versions[best.0] != nil {
            chain.append((best.0, at, best.1))
            at = best.1
        }
        // Fetched eight at a time (each a round trip to the store), then checked in order.
        let jobs = chain.map { ($0.name, versions[$0.name] ?? "") }
        let fetched = Locked([Result<[UInt8], Error>?](repeating: nil, count: jobs.count))
        // Each fetch blocks its thread until the store answers: threads of their own.
        BlockingWorkers.perform(min(8, jobs.count), name: "recover-get") { worker in
            var i = worker
            while i < jobs.count {
                let r = Result { try bucket.bytes(jobs[i].0, version: jobs[i].1) }
                fetched.mutate { $0[i] = r }
                i += 8
            }
        }
        var offset: Int64 = 0
        var bytes: [UInt8] = []
        for (i, link) in chain.enumerated() {
            guard let data = try fetched.value[i]?.get() else { break }
            let obj = try TailObject.decode(data, name: bucket.objectKey(link.name), verifier: verifier)
            guard obj.segment == n, obj.first == link.first, obj.end == link.end, obj.offset == offset else {
                throw TailObjectError(
                    object: bucket.objectKey(link.name),
                    reason:
                        "its note names segment \(obj.segment), entries \(obj.first)..<\(obj.end) at byte \(obj.offset); its place in the chain is segment \(n), entries \(link.first)..<\(link.end) at byte \(offset)"
                )
            }
            bytes += obj.bytes
            offset = obj.endOffset
        }
        let count = chain.count
        return (count == 0 ? nil : bytes, at, count)
    }

    /// The log's keys by the bucket's key successions (format-spec.md §8.8): from the first
    /// statement's old key, each signed by the key it replaces; the last must hand the log to
    /// `signer`. Without statements, `signer`'s key is the log's only one.
    static func keys(in bucket: S3Backend, signer: NoteSigner) throws -> LogKeys {
        var notes: [String] = []
        for name in try bucket.firstVersions(under: BucketLayout.successionFolder).keys.sorted() {
            guard let bytes = try bucket.firstVersionBytes(name) else { continue }
            notes.append(String(decoding: bytes, as: UTF8.self))
        }
        guard let first = notes.first else { return LogKeys(signer.verifier) }
        let keys: LogKeys
        do { keys = try LogKeys(trusting: try KeySuccession(note: first).old, successions: notes) } catch {
            throw AuditError(
                .corrupt, "the bucket's key successions (\(bucket.objectKey(BucketLayout.successionFolder))): \(error)")
        }
        guard keys.current == signer.verifier else {
            throw AuditError(
                .invalidArgument,
                "the bucket's key successions hand the log to \(keys.current.text), not to the key given (\(signer.verifier.text)): recover with the log's current key"
            )
        }
        return keys
    }

    /// Keeps the signer's record of the newest checkpoint it signed consistent with the
    /// recovered log. A record ahead of the recovered log is of checkpoints the bucket never
    /// held, which were therefore never published: it is rewound, and said so. A record that
    /// disagrees with the recovered entries at its size is a fork: recovery refuses.
    static func keepSignerState(_ path: String, ledger: Ledger, bucketNewest: SignedCheckpoint?) throws -> String? {
        guard let latest = ledger.latestCheckpoint else { return nil }
        let mine = SignerState(origin: ledger.origin, size: latest.checkpoint.size, root: latest.checkpoint.root)
        guard let state = try SignerState.load(path) else {
            try mine.save(path)
            return nil
        }
        if state.size <= ledger.size {
            guard try ledger.root(at: state.size) == state.root else {
                throw AuditError(
                    .corrupt,
                    "the signer state \(path) records a checkpoint at size \(state.size) whose root the recovered entries do not give: the bucket holds another history than the one this key signed; nothing was changed"
                )
            }
            if state.size < mine.size { try mine.save(path) }
            return nil
        }
        try mine.save(path)
        return
            "the signer state \(path) recorded a checkpoint at size \(state.size), beyond what the bucket held (\(bucketNewest.map { String($0.checkpoint.size) } ?? "nothing")): it was never published (only checkpoints the bucket backs are), so it was rewound to size \(mine.size); entries \(ledger.size)..<\(state.size) were acknowledged in local mode and lost with the machine"
    }
}
