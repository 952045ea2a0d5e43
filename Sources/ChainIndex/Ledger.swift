import Foundation
import SegmentStore
#if canImport(Glibc)
import Glibc
#endif

/// Settings of a ledger.
public struct LedgerOptions: Sendable {
    /// Segment store tuning.
    public var store = SegmentStoreOptions()
    /// Sign a checkpoint at least this often while entries arrive.
    public var checkpointInterval: Duration = .seconds(1)
    /// Run the checkpoint ticker and the sealer on background threads.
    public var background = true
    /// Most entries in one group commit.
    public var maxGroup = 8192
    /// Called on the commit thread after each group commit with its entry count and the time
    /// its write and fdatasync took (for metrics; keep it cheap).
    public var onCommit: (@Sendable (Int, Duration) -> Void)?

    /// The defaults.
    public init() {}
}

/// The durable acknowledgement of one entry.
public struct Receipt: Sendable, Equatable {
    /// Its sequence number.
    public var seq: UInt64
    /// Its leaf hash (the entry's hash).
    public var hash: Hash
    /// Its position in its org's chain.
    public var orgSeq: UInt64

    /// A receipt.
    public init(seq: UInt64, hash: Hash, orgSeq: UInt64) {
        self.seq = seq
        self.hash = hash
        self.orgSeq = orgSeq
    }
}

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
}

/// What `Ledger.open` found and repaired.
public struct LedgerRecovery: Sendable, CustomStringConvertible {
    /// The segment store's report on the open segment.
    public var store: RecoveryReport
    /// Entries re-read to rebuild tree hashes and the in-memory index.
    public var replayed: UInt64
    /// Index files written for sealed segments that lacked one.
    public var indexesRebuilt: Int
    /// One line per finding.
    public var description: String {
        "\(store); replayed \(replayed) entries" + (indexesRebuilt > 0 ? "; rebuilt \(indexesRebuilt) index files" : "")
    }
}

struct OrgState: Sendable {
    var count: UInt64
    var lastSeq: UInt64
    var lastLeaf: Hash
}

/// The log: validated entries in, sequence numbers and hashes out once durable; reads, proofs,
/// checkpoints and org queries (format-spec.md §1 describes the directory).
///
/// The only serial work per entry is building its 113-byte link and hashing it; content hashes
/// arrive precomputed in `PreparedEntry`. One fdatasync covers each group commit.
public final class Ledger: @unchecked Sendable {
    /// The data directory.
    public let directory: String
    /// The checkpoint origin and key name.
    public let origin: String
    /// The public key that checks this log's checkpoints.
    public let verifier: NoteVerifier
    /// Segments.
    public let store: SegmentStore
    /// The Merkle tree.
    public let tree: TreeStore
    /// Signed checkpoints.
    public let checkpoints: CheckpointLog
    /// The org index.
    public let index: OrgIndex
    /// What opening found.
    public let recovery: LedgerRecovery
    let options: LedgerOptions
    private let signer: NoteSigner
    private let lockFD: Int32
    private var queue: GroupCommitQueue<Op, Receipt?>?

    // Commit-thread state.
    private var orgs: [String: OrgState] = [:]
    private var lastLeaf: Hash
    private var lastCheckpointAt = ContinuousClock.now
    private var failure: Error?

    // Sealer state.
    private let sealLock = NSLock()
    private var sealedOrgs: [String: (UInt64, UInt64)] = [:]
    private var background: [BackgroundLoop] = []

    enum Op: Sendable {
        case entry(PreparedEntry)
        case checkpoint
        case maintenance
        case rotate
    }

    static let infoFile = "log.json"
    static let orgStateFile = "orgstate"

    /// Opens (creating if needed) the log in `directory`, signing with `signer`, and recovers it.
    ///
    /// Recovery: 1. lock the directory; 2. the segment store cuts the open segment's torn tail;
    /// 3. the tree is cut back to the org-state snapshot taken at the last seal; 4. entries
    /// after it (normally just the unsealed segments) are replayed: org chains re-derived, leaf
    /// hashes recomputed, the in-memory index rebuilt, missing index files written; 5. the
    /// latest signed checkpoint must match the recovered tree, or opening fails.
    public init(directory: String, signer: NoteSigner, options: LedgerOptions = .init()) throws {
        self.directory = directory
        self.options = options
        self.signer = signer
        try FileOps.makeDirectory(directory)
        lockFD = try FileOps.lockExclusive(directory + "/LOCK")
        do {
            let info = try Self.loadOrCreateInfo(directory: directory, signer: signer)
            origin = info.origin
            verifier = signer.verifier
            let segs = try SegmentStore(directory: directory + "/segments", options: options.store)
            store = segs
            let idx = try OrgIndex(directory: directory + "/index", readOnly: false)
            index = idx
            checkpoints = try CheckpointLog(directory: directory + "/checkpoints", verifier: signer.verifier)

            let (snapEnd, snapOrgs) = try Self.loadOrgState(directory + "/index/" + Self.orgStateFile)
            var t = try TreeStore(directory: directory + "/tree", maxSize: snapEnd)
            var start = snapEnd
            var orgs: [String: OrgState] = [:]
            if t.size < snapEnd {
                // The tree lost hashes it had synced: rebuild everything from the segments.
                t = try TreeStore(directory: directory + "/tree", maxSize: 0)
                start = 0
            } else {
                for (o, (count, last)) in snapOrgs { orgs[o] = OrgState(count: count, lastSeq: last, lastLeaf: try t.leaf(last)) }
            }
            tree = t
            let sealedInfos = store.segments().filter { $0.state == .sealed }
            let sealedEnd = store.segments().filter { $0.state == .sealed || $0.state == .archived }.last?.endSeq ?? 0
            for info in store.segments() where info.state == .archived {
                idx.addArchived(try ArchivedStub.load(info.path))
            }
            var atSealed = start >= sealedEnd ? snapOrgs : [:]
            var replayed: UInt64 = 0
            var leaves: [Hash] = []
            var prev = start > 0 ? try t.leaf(start - 1) : Hash.zero
            var hits: [(String, IndexHit)] = []
            try segs.scan(from: start) { rec in
                if rec.seq == sealedEnd { atSealed = orgs.mapValues { ($0.count, $0.lastSeq) } }
                let p = try RecordPayload(bytes: rec.payload)
                guard let (org, fields) = Entry.indexFields(ofStored: p.content) else {
                    let pos = segs.position(of: rec.seq)
                    throw StoreError(.corrupt, "entry \(rec.seq) is not a valid stored entry", path: pos.path, offset: pos.offset)
                }
                let st = orgs[org]
                guard p.orgSeq == (st?.count ?? 0), p.prevOrgDelta == (st.map { rec.seq - $0.lastSeq } ?? 0) else {
                    let pos = segs.position(of: rec.seq)
                    throw StoreError(.corrupt, "entry \(rec.seq) breaks org \(org)'s chain (position \(p.orgSeq), expected \(st?.count ?? 0))", path: pos.path, offset: pos.offset)
                }
                let leaf = Link(seq: rec.seq, orgSeq: p.orgSeq, contentHash: SHA256.hash(p.content), prevHash: prev,
                                prevOrgHash: st?.lastLeaf ?? .zero).leafHash
                orgs[org] = OrgState(count: p.orgSeq + 1, lastSeq: rec.seq, lastLeaf: leaf)
                leaves.append(leaf)
                prev = leaf
                hits.append((org, IndexHit(seq: rec.seq, orgSeq: p.orgSeq, fields: fields)))
                if leaves.count >= 4096 { try t.append(leaves); leaves.removeAll(keepingCapacity: true) }
                replayed += 1
                return true
            }
            try t.append(leaves)
            if start >= sealedEnd { atSealed = snapOrgs } else if sealedEnd >= segs.endSeq { atSealed = orgs.mapValues { ($0.count, $0.lastSeq) } }
            idx.add(hits)
            var rebuilt = 0
            for info in sealedInfos where info.endSeq > start {
                if !idx.hasSealedIndex(info.segment) { rebuilt += 1 }
                try idx.seal(info)
            }
            guard t.size == segs.endSeq else {
                throw LedgerError("tree holds \(t.size) leaves but the segments hold \(segs.endSeq) entries; run `auditctl verify \(directory)`")
            }
            if start < sealedEnd {
                try t.sync()
                try Self.saveOrgState(directory + "/index/" + Self.orgStateFile, end: sealedEnd, orgs: atSealed)
            }
            sealedOrgs = atSealed
            self.orgs = orgs
            lastLeaf = t.size > 0 ? try t.leaf(t.size - 1) : .zero
            recovery = LedgerRecovery(store: store.recovery, replayed: replayed, indexesRebuilt: rebuilt)

            if let cp = checkpoints.latest?.checkpoint {
                guard cp.size <= t.size else {
                    throw LedgerError("the log holds \(t.size) entries but a checkpoint was signed at size \(cp.size): signed entries are missing (truncated or deleted segment); run `auditctl verify \(directory)` and restore from the archive")
                }
                guard try t.root(at: cp.size) == cp.root else {
                    throw LedgerError("the tree root at size \(cp.size) does not match the signed checkpoint: entries were altered; run `auditctl verify \(directory)`")
                }
            }
        } catch {
            Glibc.close(lockFD)
            throw error
        }
        store.onSealed = { [unowned self] info in try self.sealed(info) }
        queue = GroupCommitQueue(name: "auditlog-commit", maxGroup: options.maxGroup) { [unowned self] ops in try self.commit(ops) }
        if options.background {
            background.append(BackgroundLoop(name: "auditlog-ticker", interval: 0.2) { [weak self] in
                self?.queue?.submit([.maintenance]) { _ in }
            })
            background.append(BackgroundLoop(name: "auditlog-sealer", interval: 0.1) { [weak self] in
                guard let self, self.store.hasRotated else { return }
                do { try self.store.sealRotated() } catch { self.reportBackground(error) }
            })
        }
    }

    private let bgErrorLock = NSLock()
    private var _backgroundError: Error?
    /// The last error a background job met (sealing), if any.
    public var backgroundError: Error? { bgErrorLock.withLock { _backgroundError } }
    private func reportBackground(_ e: Error) { bgErrorLock.withLock { _backgroundError = e } }

    // MARK: Writing

    /// Appends entries and returns once they are durable, with their receipts.
    public func append(_ entries: [PreparedEntry]) async throws -> [Receipt] {
        guard let queue else { throw GroupCommitStopped() }
        return try await queue.submit(entries.map { .entry($0) }).compactMap { $0 }
    }

    /// Appends entries, blocking this thread until they are durable.
    public func appendAndWait(_ entries: [PreparedEntry]) throws -> [Receipt] {
        guard let queue else { throw GroupCommitStopped() }
        return try queue.submitAndWait(entries.map { .entry($0) }).compactMap { $0 }
    }

    /// Appends entries and calls `done` on the commit thread once they are durable.
    public func append(_ entries: [PreparedEntry], done: @escaping @Sendable (Result<[Receipt], Error>) -> Void) {
        guard let queue else { return done(.failure(GroupCommitStopped())) }
        queue.submit(entries.map { .entry($0) }) { r in done(r.map { $0.compactMap { $0 } }) }
    }

    /// Signs a checkpoint of the current tree now (if it grew since the last one).
    public func checkpointNow() throws {
        guard let queue else { throw GroupCommitStopped() }
        _ = try queue.submitAndWait([.checkpoint])
    }

    private func commit(_ ops: [Op]) throws -> [Receipt?] {
        if let failure { throw failure }
        var out: [Receipt?] = []
        out.reserveCapacity(ops.count)
        var records: [StoreRecord] = []
        var leaves: [Hash] = []
        var hits: [(String, IndexHit)] = []
        var overlay: [String: OrgState] = [:]
        var seq = store.nextSeq
        var prev = lastLeaf
        var wantCheckpoint = false, maintenance = false, rotate = false
        for op in ops {
            switch op {
            case .entry(let e):
                let st = overlay[e.org] ?? orgs[e.org]
                let orgSeq = st?.count ?? 0
                let leaf = Link(seq: seq, orgSeq: orgSeq, contentHash: e.contentHash, prevHash: prev, prevOrgHash: st?.lastLeaf ?? .zero).leafHash
                records.append(StoreRecord(key: RecordPayload.groupKey(e.org),
                                           payload: RecordPayload(orgSeq: orgSeq, prevOrgDelta: st.map { seq - $0.lastSeq } ?? 0, content: e.content).bytes))
                leaves.append(leaf)
                hits.append((e.org, IndexHit(seq: seq, orgSeq: orgSeq, fields: e.fields)))
                overlay[e.org] = OrgState(count: orgSeq + 1, lastSeq: seq, lastLeaf: leaf)
                out.append(Receipt(seq: seq, hash: leaf, orgSeq: orgSeq))
                prev = leaf
                seq += 1
            case .checkpoint:
                wantCheckpoint = true
                out.append(nil)
            case .maintenance:
                maintenance = true
                out.append(nil)
            case .rotate:
                rotate = true
                out.append(nil)
            }
        }
        if !records.isEmpty {
            let started = ContinuousClock.now
            try store.write(records)
            do {
                try store.sync()
                options.onCommit?(records.count, ContinuousClock.now - started)
                try tree.append(leaves)
            } catch {
                // After a failed fdatasync the page cache can no longer be trusted (the error may
                // have dropped dirty pages): refuse all further writes until a restart recovers.
                failure = LedgerError("the log stopped accepting writes after a storage failure (\(error)); restart auditd to recover")
                throw error
            }
            for (k, v) in overlay { orgs[k] = v }
            lastLeaf = prev
            index.add(hits)
            try store.rotateIfFull()
        }
        if maintenance { try store.rotateIfOld() }
        if rotate { try store.rotate() }
        let latest = checkpoints.latest?.checkpoint.size ?? 0
        if tree.size > latest && (wantCheckpoint || ContinuousClock.now - lastCheckpointAt >= options.checkpointInterval) {
            try signCheckpoint()
        }
        return out
    }

    private func signCheckpoint() throws {
        let size = tree.size
        guard size > (checkpoints.latest?.checkpoint.size ?? 0) || (size == 0 && checkpoints.latest == nil) else { return }
        let cp = Checkpoint(origin: origin, size: size, root: try tree.root(at: size))
        try checkpoints.append(SignedCheckpoint(checkpoint: cp, note: try signer.sign(cp.text)))
        lastCheckpointAt = .now
    }

    // MARK: Sealing

    private func sealed(_ info: SegmentInfo) throws {
        try tree.sync()
        let last = try index.seal(info)
        let snapshot: [String: (UInt64, UInt64)] = sealLock.withLock {
            for (o, h) in last { sealedOrgs[o] = (h.orgSeq + 1, h.seq) }
            return sealedOrgs
        }
        try Self.saveOrgState(directory + "/index/" + Self.orgStateFile, end: info.endSeq, orgs: snapshot)
        queue?.submit([.checkpoint]) { _ in }
    }

    /// Rotates the open segment (if it holds anything) and seals every rotated segment now.
    public func sealNow() throws {
        guard let queue else { throw GroupCommitStopped() }
        _ = try queue.submitAndWait([.rotate])
        try store.sealRotated()
        try checkpointNow()
    }

    /// Stops background work, commits and checkpoints what is pending, seals rotated segments,
    /// syncs the tree and releases the directory. The ledger cannot be used afterwards.
    public func close() throws {
        for b in background { b.stop() }
        background.removeAll()
        guard let q = queue else { return }
        _ = try? q.submitAndWait([.checkpoint])
        q.shutdown()
        queue = nil
        try store.sealRotated()
        try tree.sync()
        try signCheckpoint()
        Glibc.close(lockFD)
    }

    /// Signs `text` (ending in a newline) with the log's key: bundle manifests and tombstones.
    public func sign(_ text: String) throws -> String { try signer.sign(text) }

    // MARK: Reading

    /// Number of durable entries (the tree size).
    public var size: UInt64 { tree.size }

    /// The newest signed checkpoint.
    public var latestCheckpoint: SignedCheckpoint? { checkpoints.latest }

    /// Reads entry `seq` and checks it against the stored leaf hash.
    public func entry(seq: UInt64) throws -> StoredEntry {
        guard seq < tree.size else { throw StoreError(.notFound, "entry \(seq) does not exist (the log holds \(tree.size))") }
        return try checked(try store.read(seq: seq))
    }

    /// Reads many entries at once (each block decompressed once), checking each against its leaf.
    public func entries(seqs: [UInt64]) throws -> [StoredEntry] {
        let size = tree.size
        for s in seqs where s >= size { throw StoreError(.notFound, "entry \(s) does not exist (the log holds \(size))") }
        return try store.read(seqs: seqs).map(checked)
    }

    /// Rebuilds a record's link from the tree and checks its hash against the stored leaf.
    private func checked(_ rec: StoredRecord) throws -> StoredEntry {
        let seq = rec.seq
        let p = try RecordPayload(bytes: rec.payload)
        let prev = seq > 0 ? try tree.leaf(seq - 1) : Hash.zero
        let prevOrg = p.prevOrgDelta > 0 && p.prevOrgDelta <= seq ? try tree.leaf(seq - p.prevOrgDelta) : Hash.zero
        let link = Link(seq: seq, orgSeq: p.orgSeq, contentHash: SHA256.hash(p.content), prevHash: prev, prevOrgHash: prevOrg)
        let leaf = try tree.leaf(seq)
        guard link.leafHash == leaf else {
            let pos = store.position(of: seq)
            throw StoreError(.corrupt, "entry \(seq) does not match its leaf hash: it was altered", path: pos.path, offset: pos.offset)
        }
        return StoredEntry(org: CanonicalScan.topLevelString(p.content, key: "org") ?? "", content: p.content, link: link, hash: leaf)
    }

    /// The archived (or purged) bundles holding `org`'s entries that a query with `filter` and
    /// `cursor` would reach: what a client must restore to see them.
    public func archivedRanges(org: String, filter: QueryFilter = .init(), newestFirst: Bool = true, cursor: UInt64? = nil) -> [ArchivedRange] {
        index.archivedRanges(org: org, filter: filter, newestFirst: newestFirst, cursor: cursor)
    }

    /// A page of `org`'s entries matching `filter` and, if `text` is given, containing it
    /// (ASCII case-insensitive, anywhere in the entry). Examines at most `budget` index hits;
    /// `next` is the cursor to continue from (nil when the org's log is exhausted).
    public func search(org: String, filter: QueryFilter = .init(), text: String? = nil, newestFirst: Bool = true,
                       limit: Int = 100, cursor: UInt64? = nil, budget: Int = 50_000) throws -> (entries: [StoredEntry], next: UInt64?) {
        var out: [StoredEntry] = []
        var cur = cursor
        var examined = 0
        let needle = text.map { Array($0.lowercased().utf8) }
        let page = needle == nil ? limit : 512
        while out.count < limit && examined < budget {
            let hits = try index.query(org: org, filter: filter, newestFirst: newestFirst, limit: page, cursor: cur)
            if hits.isEmpty { return (out, nil) }
            let batch = try entries(seqs: hits.map(\.seq))
            for (h, e) in zip(hits, batch) {
                examined += 1
                cur = h.seq
                if let needle, !Self.contains(e.content, needle) { continue }
                out.append(e)
                if out.count == limit { return (out, h.seq) }
            }
            if hits.count < page { return (out, nil) }
        }
        return (out, cur)
    }

    static func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard hay.count >= needle.count else { return false }
        let first = needle[0]
        var i = 0
        while i <= hay.count - needle.count {
            var c = hay[i]
            if c >= 0x41 && c <= 0x5A { c += 32 }
            if c == first {
                var k = 1
                while k < needle.count {
                    var d = hay[i + k]
                    if d >= 0x41 && d <= 0x5A { d += 32 }
                    if d != needle[k] { break }
                    k += 1
                }
                if k == needle.count { return true }
            }
            i += 1
        }
        return false
    }

    /// Inclusion proof of entry `seq` in the tree of `size` (default: the latest checkpoint's).
    public func inclusionProof(seq: UInt64, size: UInt64) throws -> [Hash] {
        try tree.inclusionProof(index: seq, size: size)
    }

    /// Consistency proof between tree sizes.
    public func consistencyProof(old: UInt64, new: UInt64) throws -> [Hash] {
        try tree.consistencyProof(old: old, new: new)
    }

    /// Queries `org`'s entries through the index.
    public func query(org: String, filter: QueryFilter = .init(), newestFirst: Bool = true, limit: Int = 100, cursor: UInt64? = nil) throws -> [IndexHit] {
        try index.query(org: org, filter: filter, newestFirst: newestFirst, limit: limit, cursor: cursor)
    }

    // MARK: Files

    struct Info: Codable {
        var format: Int
        var origin: String
        var verifier_key: String
    }

    static func loadOrCreateInfo(directory: String, signer: NoteSigner) throws -> Info {
        let path = directory + "/" + infoFile
        if FileOps.exists(path) {
            let info = try readInfo(directory: directory)
            guard info.verifier_key == signer.verifier.text else {
                throw LedgerError("the signing key (\(signer.verifier.text)) is not this log's key (\(info.verifier_key)); start with the key the log was created with")
            }
            return info
        }
        let info = Info(format: 1, origin: signer.name, verifier_key: signer.verifier.text)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try Durable.replace(path: path, contents: Array(try enc.encode(info)) + [0x0A], readOnly: false)
        return info
    }

    static func readInfo(directory: String) throws -> Info {
        let path = directory + "/" + infoFile
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LedgerError("\(directory) is not an audit log directory (no \(infoFile))")
        }
        do { return try JSONDecoder().decode(Info.self, from: data) } catch {
            throw LedgerError("\(path) is malformed: \(error)")
        }
    }

    /// The verifier key recorded in a log directory.
    public static func verifierKey(directory: String) throws -> NoteVerifier {
        try NoteVerifier(try readInfo(directory: directory).verifier_key)
    }

    /// The org-state snapshot (format-spec.md §7.2):
    ///     "AUDORGS1" end:u64 n:u32 (len:u8 org count:u64 lastSeq:u64)* crc32c:u32
    static func saveOrgState(_ path: String, end: UInt64, orgs: [String: (UInt64, UInt64)]) throws {
        var w = ByteWriter(capacity: 20 + orgs.count * 40)
        w.write(ChainFormat.orgStateMagic)
        w.write(end)
        w.write(UInt32(orgs.count))
        for (o, (c, l)) in orgs.sorted(by: { $0.key < $1.key }) {
            w.write(UInt8(o.utf8.count)); w.write(Array(o.utf8)); w.write(c); w.write(l)
        }
        w.write(CRC32C.checksum(w.bytes))
        try Durable.replace(path: path, contents: w.bytes, readOnly: false)
    }

    static func loadOrgState(_ path: String) throws -> (UInt64, [String: (UInt64, UInt64)]) {
        guard let data = FileManager.default.contents(atPath: path) else { return (0, [:]) }
        let b = [UInt8](data)
        guard b.count >= 24, CRC32C.checksum(b[..<(b.count - 4)]) == UInt32(b[b.count - 4]) | UInt32(b[b.count - 3]) << 8 | UInt32(b[b.count - 2]) << 16 | UInt32(b[b.count - 1]) << 24
        else { return (0, [:]) } // damaged snapshot: fall back to a full replay
        var r = ByteReader(b, range: 0..<(b.count - 4))
        do {
            guard Array(try r.read(count: 8)) == ChainFormat.orgStateMagic else { return (0, [:]) }
            let end = try r.readU64()
            let n = try r.readU32()
            var out: [String: (UInt64, UInt64)] = [:]
            for _ in 0..<n {
                let o = String(decoding: try r.read(count: Int(try r.readU8())), as: UTF8.self)
                out[o] = (try r.readU64(), try r.readU64())
            }
            return (end, out)
        } catch { return (0, [:]) }
    }
}

/// A thread that runs `body` every `interval` seconds until stopped.
final class BackgroundLoop: @unchecked Sendable {
    private let cond = NSCondition()
    private var stopping = false
    private var stopped = false

    init(name: String, interval: TimeInterval, body: @escaping @Sendable () -> Void) {
        let t = Thread { [self] in
            while true {
                cond.lock()
                if !stopping { cond.wait(until: Date().addingTimeInterval(interval)) }
                if stopping {
                    stopped = true
                    cond.broadcast()
                    cond.unlock()
                    return
                }
                cond.unlock()
                body()
            }
        }
        t.name = name
        t.start()
    }

    func stop() {
        cond.lock()
        stopping = true
        cond.broadcast()
        while !stopped { cond.wait() }
        cond.unlock()
    }
}
