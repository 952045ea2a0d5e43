import Archive
import AuditBase
import AuditEntries
import AuditIndex
import ChainIndex
import Foundation
import LogProofs
import LogTree
import PersonalStore
import SegmentStore

/// The per-entry checks, resumable: content hash, org chain, link, leaf hash against the stored
/// tree, stored higher levels, and the root at every checkpoint size. Used by `Verifier` over a
/// whole directory and by the daemon's continuous verification over newly sealed segments.
public struct ChainChecker {
    let store: SegmentStore
    let tree: TreeStore
    var checkpoints: [(size: UInt64, root: Hash, offset: Int64)]
    let checkpointPath: String
    var orgs = OrgTable()
    var prev = Hash.zero
    /// The previous entry's received_at (it never decreases in sequence order), or the latest
    /// one an archived segment's stub claims.
    var lastTime: Int64 = 0
    /// The segment whose stub set `lastTime`, while no hot entry has followed it.
    var lastTimeStub: UInt64?
    /// Action prefixes (bytes) whose entries' content is kept in `collected`.
    public var collect: [[UInt8]] = []
    /// Contents of the entries `collect` asked for, in sequence order.
    public internal(set) var collected: [[UInt8]] = []
    /// The latest `received_at` of the archived segments stepped over.
    public internal(set) var archivedUntil: Int64?
    /// The leaves so far: the tile checker holds the current tile's, and hands each whole
    /// tile's root to its compact range.
    var tiles: TileChecker
    var nextCp = 0
    /// One past the last entry checked.
    public internal(set) var position: UInt64 = 0
    /// Where sealed segments' index files are; when set, each one is compared, row by row,
    /// with the entries it describes (format-spec.md §10).
    public var indexDirectory: String?
    /// The current segment's index file, its rows compared with the entries as they are checked.
    var indexRows: SealedIndexRows?
    /// When set, each entry's committed fields are checked against the personal store.
    public var personal: PersonalCheck?

    /// A checker starting at entry 0.
    public init(
        store: SegmentStore, tree: TreeStore, checkpoints: [(size: UInt64, root: Hash, offset: Int64)],
        checkpointPath: String
    ) {
        self.store = store
        self.tree = tree
        self.checkpoints = checkpoints
        self.checkpointPath = checkpointPath
        tiles = TileChecker(tree: tree)
    }

    /// A checker of the open ledger's own files (the daemon's rechecks), starting at entry 0.
    public init(ledger: Ledger, checkpoints: [(size: UInt64, root: Hash, offset: Int64)]) {
        self.init(
            store: ledger.store, tree: ledger.tree, checkpoints: checkpoints, checkpointPath: ledger.checkpointLogPath)
    }

    /// Orgs seen so far.
    public var orgCount: Int { orgs.count }

    /// Adds checkpoints that appeared since (sizes must not decrease).
    public mutating func addCheckpoints(_ more: [(size: UInt64, root: Hash, offset: Int64)]) {
        checkpoints.append(contentsOf: more)
    }

    mutating func checkEmptyCheckpoints() -> VerificationFailure? {
        while nextCp < checkpoints.count && checkpoints[nextCp].size == 0 {
            if checkpoints[nextCp].root != Merkle.emptyRoot {
                return VerificationFailure(
                    seq: nil, path: checkpointPath, offset: checkpoints[nextCp].offset,
                    message: "checkpoint at size 0 has a wrong root")
            }
            nextCp += 1
        }
        return nil
    }

    /// Checks the next records (which must continue from `position`); returns the first failure.
    public mutating func check(_ batch: [StoredRecord]) throws -> VerificationFailure? {
        try check(
            prepared: Self.prepare(
                RecordRun(batch), personal: personal != nil, tree: tree, index: indexRows, collect: collect))
    }

    /// Checks a prepared batch: the serial part (chains, links, tree, checkpoints).
    public mutating func check(prepared b: PreparedBatch) throws -> VerificationFailure? {
        guard let firstSeq = b.seqs.first else { return nil }
        guard firstSeq == position else {
            return VerificationFailure(
                seq: position, path: store.directory, offset: nil,
                message: "entries are not contiguous (expected \(position), found \(firstSeq))")
        }
        let n = b.seqs.count
        guard indexRows == nil || b.indexed else {
            return VerificationFailure(
                seq: firstSeq, path: store.directory, offset: nil,
                message: "entries were not compared with their segment's index file (prepared without it)")
        }
        // Entries past the tree as it was when the batch was prepared (a live daemon appends
        // leaves after their entries) have no stored leaves to compare: they are all computed.
        let have = b.have
        for i in 0..<n {
            let seq = b.seqs[i]
            let e = b.entries[i]
            func bad(_ m: String) -> VerificationFailure {
                let pos = store.position(of: seq)
                return VerificationFailure(seq: seq, path: pos.path, offset: pos.offset, message: m)
            }
            guard seq == position else {
                return bad("entries are not contiguous (expected \(position), found \(seq))")
            }
            guard let p = e.header, let org = e.org else {
                return bad("the stored record is not a valid entry (payload header or org unreadable)")
            }
            // One lookup of the org (a hash of its name) for its state, read and written.
            let slot = orgs.slot(org)
            let st = slot.map { orgs.position($0) } ?? .start
            let leaf: Hash
            do {
                // Built on all cores from the stored leaves, taken when those are the leaves
                // this check's own chains reached; otherwise built here.
                if i < have,
                    let built = b.builtLeaf(i, prev: prev, prevOrg: st.lastHash, prevOrgDelta: p.prevOrgDelta)
                {
                    try st.expect(seq: seq, orgSeq: p.orgSeq, prevOrgDelta: p.prevOrgDelta)
                    leaf = built
                } else {
                    leaf = try st.expect(
                        seq: seq, orgSeq: p.orgSeq, prevOrgDelta: p.prevOrgDelta, prev: prev, contentHash: e.hash
                    ).leafHash
                }
            } catch {
                return bad("org \(org)'s chain is broken: \(error)")
            }
            if i < have, b.storedLeaf(i) != leaf {
                return bad(
                    "entry hash does not match the stored tree leaf: the entry (or an earlier one of its chain) was altered"
                )
            }
            guard e.time >= 0 else {
                return bad("the entry lacks received_at, category, outcome, action or actor (or one is malformed)")
            }
            guard e.time >= lastTime else {
                let previous =
                    lastTimeStub.map { "the latest time archived segment \($0)'s stub claims" }
                    ?? "the previous entry's"
                return bad(
                    "received_at \(Timestamp.format(e.time)) is earlier than \(previous) (\(Timestamp.format(lastTime))): received_at never decreases in sequence order"
                )
            }
            lastTime = e.time
            lastTimeStub = nil
            if let pc = personal, let prepared = e.personal, let m = try pc.check(seq: seq, prepared) {
                return bad(m)
            }
            if e.wanted {
                collected.append(Array(b.records.payload(i)[p.contentStart...]))
            }
            let next = st.advanced(seq: seq, leaf: leaf)
            if let slot {
                orgs.set(slot, next)
            } else {
                _ = orgs.add(org, next)
            }
            indexRows?.record(e.index, seq: seq, org: org) {
                let content = Array(b.records.payload(i)[p.contentStart...])
                return Entry.indexFields(ofStored: content).map {
                    IndexHit(seq: seq, orgSeq: p.orgSeq, fields: $0.fields)
                }
            }
            prev = leaf
            if let m = try tiles.append(leaf) { return bad(m) }
            while nextCp < checkpoints.count && checkpoints[nextCp].size == seq + 1 {
                if tiles.root() != checkpoints[nextCp].root {
                    let from = nextCp > 0 ? checkpoints[nextCp - 1].size : 0
                    return VerificationFailure(
                        seq: from, path: checkpointPath, offset: checkpoints[nextCp].offset,
                        message:
                            "recomputed root at size \(seq + 1) does not match the signed checkpoint: entries \(from)..<\(seq + 1) were altered, inserted or removed (hashes recomputed by someone without the signing key)"
                    )
                }
                nextCp += 1
            }
            position = seq + 1
        }
        return nil
    }
}

/// Recomputes each stored tile level from the leaves and compares it with the tree files; and
/// the root of the leaves so far, from the same hashes: each whole tile's root goes into a
/// compact range as one subtree (a compact range fed every leaf computed each node a second
/// time).
struct TileChecker {
    let tree: TreeStore
    var pending: [[Hash]] = [[]]
    var counts: [UInt64] = [0]
    /// The whole tiles of leaves so far.
    private var range = CompactRange()

    init(tree: TreeStore) { self.tree = tree }

    mutating func append(_ leaf: Hash) throws -> String? { try push(0, leaf) }

    /// RFC 9162 root of the leaves appended: the whole tiles' range, then the current tile's leaves.
    func root() -> Hash {
        var r = range
        for leaf in pending[0] { r.append(leaf) }
        return r.root()
    }

    private mutating func push(_ k: Int, _ h: Hash) throws -> String? {
        if k >= pending.count {
            pending.append([])
            counts.append(0)
        }
        if k > 0, let s = try tree.stored(k, counts[k]), s != h {
            return
                "stored tree hash \(counts[k]) of level \(k * ChainFormat.tileHeight) does not match the entries beneath it (tree file altered)"
        }
        counts[k] += 1
        pending[k].append(h)
        if pending[k].count == ChainFormat.tileWidth {
            let r = Merkle.root(pending[k][...])
            pending[k].removeAll(keepingCapacity: true)
            if k == 0 { range.append(subtree: r, height: ChainFormat.tileHeight) }
            return try push(k + 1, r)
        }
        return nil
    }
}
