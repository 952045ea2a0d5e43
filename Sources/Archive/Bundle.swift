import AuditBase
import AuditEntries
import AuditIndex
import ChainIndex
import Foundation
import LogProofs
import SegmentStore

/// A refused bundle: which file, and why.
public struct BundleError: Error, Sendable, CustomStringConvertible {
    /// The file at fault.
    public var file: String
    /// What is wrong with it.
    public var reason: String
    /// In words.
    public var description: String { "\(file): \(reason)" }

    /// `file` refused for `reason`.
    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }
}

/// `manifest.json` of a bundle (format-spec.md §12.1).
public struct BundleManifest: Codable, Sendable, Equatable {
    /// A perfect Merkle subtree: height and hex hash.
    public struct Node: Codable, Sendable, Equatable {
        /// Height (0 = a leaf).
        public var height: Int
        /// Hex hash.
        public var hash: String
    }

    /// One org's chain state just before the segment.
    public struct OrgStart: Codable, Sendable, Equatable {
        /// Its entries before the segment (the first entry's expected `orgSeq`).
        public var count: UInt64
        /// Hex hash of its last entry before the segment (zero if none).
        public var last_hash: String
    }

    /// `auditlog-bundle/1`.
    public var format: String
    /// The log's origin.
    public var origin: String
    /// Segment number.
    public var segment: UInt64
    /// First sequence number.
    public var first_seq: UInt64
    /// One past the last.
    public var end_seq: UInt64
    /// Hex SHA-256 of every other file of the bundle.
    public var files: [String: String]
    /// Hex hash of entry `first_seq - 1` (zero for 0): the global chain's state at the start.
    public var prev_hash: String
    /// Each org's chain state at the start.
    public var org_start: [String: OrgStart]
    /// Each org's entries in the segment.
    public var orgs: [ArchivedStub.OrgSummary]
    /// The tree size of the checkpoint in `checkpoint.note`.
    public var checkpoint_size: UInt64
    /// Perfect subtrees covering leaves [0, first_seq).
    public var left: [Node]
    /// Aligned perfect subtrees covering leaves [end_seq, checkpoint_size).
    public var right: [Node]
    /// The previous bundle's checkpoint size, if there is one.
    public var previous_checkpoint_size: UInt64?
    /// RFC 9162 consistency proof from that size to `checkpoint_size`.
    public var consistency: [String]?
    /// When the bundle was made (RFC 3339).
    public var created_at: String
}

/// Names of a bundle's files.
public enum BundleFiles {
    /// The sealed segment, byte for byte.
    public static let segment = "segment.seg"
    /// Its org index, byte for byte.
    public static let index = "index.idx"
    /// Its entries' leaf hashes, 32 bytes each, in order.
    public static let leaves = "leaves.hashes"
    /// A signed checkpoint covering the segment.
    public static let checkpoint = "checkpoint.note"
    /// The manifest.
    public static let manifest = "manifest.json"
    /// The signed note over the manifest's hash.
    public static let signature = "manifest.sig"

    /// The bundle id of segment `n`.
    public static func name(_ n: UInt64) -> String { "bundle-" + String(SegmentNames.sealed(n).dropLast(4)) }
}

/// Makes and checks bundles.
public enum ArchiveBundle {
    /// Writes the bundle of sealed segment `info` into `staging` (every file fsync'd) and returns
    /// its manifest and signed manifest note.
    static func build(
        ledger: Ledger, signer: SignerProxy, info: SegmentInfo, previous: (UInt64, UInt64)?, staging: String, now: Date
    ) throws -> (BundleManifest, String) {
        let segPath = info.path
        let idxPath = DataDirectory(ledger.directory).index + "/" + OrgIndex.fileName(info.segment)
        let segBytes = try ArchiveFiles.read(segPath)
        let idxBytes = try ArchiveFiles.read(idxPath)
        let records = try SealedSegment(path: segPath).readAll()
        let leaves = try ledger.leaves(from: info.firstSeq, count: Int(info.endSeq - info.firstSeq))
        var leafBytes = [UInt8]()
        leafBytes.reserveCapacity(leaves.count * 32)
        for l in leaves { leafBytes += l.bytes }

        var starts: [String: BundleManifest.OrgStart] = [:]
        var summary: [String: ArchivedStub.OrgSummary] = [:]
        for r in records {
            let p = try RecordPayload(bytes: r.payload)
            guard let (org, fields) = Entry.indexFields(ofStored: p.content) else {
                throw BundleError(file: segPath, reason: "entry \(r.seq) is not a valid stored entry")
            }
            if starts[org] == nil {
                let link = try Link.stored(
                    seq: r.seq, orgSeq: p.orgSeq, prevOrgDelta: p.prevOrgDelta, contentHash: SHA256.hash(p.content),
                    leaf: ledger.leaf)
                starts[org] = BundleManifest.OrgStart(count: p.orgSeq, last_hash: link.prevOrgHash.hex)
            }
            ArchivedStub.OrgSummary.add(to: &summary, org: org, seq: r.seq, orgSeq: p.orgSeq, time: fields.time)
        }
        guard let cp = try ledger.checkpoint(atLeast: info.endSeq) else {
            throw AuditError("no checkpoint covers segment \(info.segment) yet; sign one first")
        }
        let size = cp.checkpoint.size
        let left = try ledger.prefixNodes(size: info.firstSeq).map {
            BundleManifest.Node(height: $0.height, hash: $0.hash.hex)
        }
        let right = try ledger.subtrees(from: info.endSeq, to: size).map {
            BundleManifest.Node(height: $0.height, hash: $0.hash.hex)
        }
        var consistency: [String]?
        if let (_, prevSize) = previous, prevSize <= size, prevSize > 0 {
            consistency = try ledger.consistencyProof(old: prevSize, new: size).map(\.hex)
        }
        let files: [(String, [UInt8])] = [
            (BundleFiles.segment, segBytes), (BundleFiles.index, idxBytes), (BundleFiles.leaves, leafBytes),
            (BundleFiles.checkpoint, Array(cp.note.utf8)),
        ]
        var hashes: [String: String] = [:]
        for (name, bytes) in files {
            try FileOps.createFile(staging + "/" + name, contents: bytes, mode: 0o440)
            hashes[name] = SHA256.hash(bytes).hex
        }
        let manifest = BundleManifest(
            format: "auditlog-bundle/1", origin: ledger.origin, segment: info.segment, first_seq: info.firstSeq,
            end_seq: info.endSeq,
            files: hashes, prev_hash: (info.firstSeq > 0 ? try ledger.leaf(info.firstSeq - 1) : .zero).hex,
            org_start: starts,
            orgs: summary.values.sorted { $0.org < $1.org }, checkpoint_size: size, left: left, right: right,
            previous_checkpoint_size: consistency == nil ? nil : previous?.1, consistency: consistency,
            created_at: Timestamp.format(Int64(now.timeIntervalSince1970 * 1000)))
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let mbytes = Array(try enc.encode(manifest)) + [0x0A]
        let note = try signer.sign(
            ArchivedStub.manifestNoteText(origin: ledger.origin, segment: info.segment, sha256: SHA256.hash(mbytes).hex)
        )
        try FileOps.createFile(staging + "/" + BundleFiles.manifest, contents: mbytes, mode: 0o440)
        try FileOps.createFile(staging + "/" + BundleFiles.signature, contents: Array(note.utf8), mode: 0o440)
        return (manifest, note)
    }

    /// The cheap half of `verify`: the manifest's signature, every file's SHA-256 against it,
    /// and the checkpoint's signature and size. What the files hold is not read: a caller
    /// that re-derives the entries itself (recovery replays them into a tree and checks the
    /// signed roots) needs no more.
    public static func checkSigned(
        directory dir: String, verifier: LogKeys
    ) throws -> (
        BundleManifest, SignedCheckpoint
    ) {
        let mpath = dir + "/" + BundleFiles.manifest
        let mbytes = try ArchiveFiles.read(mpath)
        let note = String(decoding: try ArchiveFiles.read(dir + "/" + BundleFiles.signature), as: UTF8.self)
        let text: String
        do { text = try verifier.open(note) } catch {
            throw BundleError(file: dir + "/" + BundleFiles.signature, reason: "manifest signature: \(error)")
        }
        let manifest: BundleManifest
        do { manifest = try JSONDecoder().decode(BundleManifest.self, from: Data(mbytes)) } catch {
            throw BundleError(file: mpath, reason: "malformed: \(error)")
        }
        guard
            text
                == ArchivedStub.manifestNoteText(
                    origin: verifier.name, segment: manifest.segment, sha256: SHA256.hash(mbytes).hex)
        else {
            throw BundleError(
                file: mpath, reason: "does not match its signed note (edited, or swapped with another bundle's)")
        }
        for name in [BundleFiles.segment, BundleFiles.index, BundleFiles.leaves, BundleFiles.checkpoint] {
            guard let want = manifest.files[name] else { throw BundleError(file: mpath, reason: "lists no \(name)") }
            let got = SHA256.hash(try ArchiveFiles.read(dir + "/" + name)).hex
            guard got == want else {
                throw BundleError(file: dir + "/" + name, reason: "SHA-256 \(got) is not the manifest's \(want)")
            }
        }
        let cp: SignedCheckpoint
        do {
            cp = try SignedCheckpoint(
                note: String(decoding: try ArchiveFiles.read(dir + "/" + BundleFiles.checkpoint), as: UTF8.self),
                verifier: verifier)
        } catch {
            throw BundleError(file: dir + "/" + BundleFiles.checkpoint, reason: "\(error)")
        }
        guard cp.checkpoint.size == manifest.checkpoint_size, cp.checkpoint.size >= manifest.end_seq else {
            throw BundleError(
                file: dir + "/" + BundleFiles.checkpoint,
                reason: "checkpoint size \(cp.checkpoint.size) does not cover the segment")
        }
        return (manifest, cp)
    }

    /// Checks a bundle on its own, with nothing but `verifier`: the manifest's signature, every
    /// file's hash, the checkpoint's signature, every block, every entry's content hash and both
    /// chains from the recorded start state, the leaf hashes, and that those leaves with the
    /// recorded subtrees give the checkpoint's root. Throws the first problem, naming the file.
    public static func verify(directory dir: String, verifier: LogKeys) throws -> BundleManifest {
        let (manifest, cp) = try checkSigned(directory: dir, verifier: verifier)
        let mpath = dir + "/" + BundleFiles.manifest
        let segPath = dir + "/" + BundleFiles.segment
        let seg: SealedSegment
        let records: [StoredRecord]
        do {
            seg = try SealedSegment(path: segPath)
            records = try seg.readAll()
        } catch { throw BundleError(file: segPath, reason: "\(error)") }
        guard seg.header.segment == manifest.segment, seg.footer.firstSeq == manifest.first_seq,
            seg.footer.lastSeq + 1 == manifest.end_seq
        else {
            throw BundleError(
                file: segPath,
                reason:
                    "holds segment \(seg.header.segment) \(seg.footer.firstSeq)...\(seg.footer.lastSeq), not what the manifest says"
            )
        }
        let leafBytes = try ArchiveFiles.read(dir + "/" + BundleFiles.leaves)
        guard leafBytes.count == records.count * 32 else {
            throw BundleError(file: dir + "/" + BundleFiles.leaves, reason: "wrong length")
        }
        guard var prev = Hash(hex: manifest.prev_hash) else { throw BundleError(file: mpath, reason: "bad prev_hash") }
        var orgs: [String: OrgPosition] = [:]
        for (o, s) in manifest.org_start {
            guard let h = Hash(hex: s.last_hash) else {
                throw BundleError(file: mpath, reason: "bad org_start hash of \(o)")
            }
            // An org cannot have had more entries before the segment than the log had (this
            // also keeps every org position below, and its + 1, far from overflowing).
            guard s.count <= manifest.first_seq else {
                throw BundleError(
                    file: mpath,
                    reason: "org_start of \(o) counts \(s.count) entries before entry \(manifest.first_seq)")
            }
            guard (s.count == 0) == (h == .zero) else {
                throw BundleError(
                    file: mpath, reason: "org_start of \(o): \(s.count) entries before the segment with last hash \(h)")
            }
            orgs[o] = OrgPosition(count: s.count, lastSeq: nil, lastHash: h)
        }
        var hits: [String: [IndexHit]] = [:]
        var summary: [String: ArchivedStub.OrgSummary] = [:]
        var range = CompactRange(
            nodes: try manifest.left.map { n -> (height: Int, hash: Hash) in
                guard let h = Hash(hex: n.hash) else { throw BundleError(file: mpath, reason: "bad left node") }
                return (n.height, h)
            })
        guard range.size == manifest.first_seq else {
            throw BundleError(file: mpath, reason: "left subtrees do not cover 0..<\(manifest.first_seq)")
        }
        for (i, r) in records.enumerated() {
            let p: RecordPayload
            do { p = try RecordPayload(bytes: r.payload) } catch {
                throw BundleError(file: segPath, reason: "entry \(r.seq): \(error)")
            }
            guard let org = CanonicalScan.topLevelString(p.content, key: "org"), let st = orgs[org] else {
                throw BundleError(file: segPath, reason: "entry \(r.seq) has an org the manifest does not list")
            }
            let leaf: Hash
            do {
                leaf = try st.expect(
                    seq: r.seq, orgSeq: p.orgSeq, prevOrgDelta: p.prevOrgDelta, prev: prev,
                    contentHash: SHA256.hash(p.content)
                ).leafHash
            } catch {
                throw BundleError(file: segPath, reason: "org \(org)'s chain is broken: \(error)")
            }
            guard leafBytes[(i * 32)..<(i * 32 + 32)].elementsEqual(leaf.bytes) else {
                throw BundleError(file: segPath, reason: "entry \(r.seq) does not hash to its recorded leaf (altered)")
            }
            orgs[org] = st.advanced(seq: r.seq, leaf: leaf)
            prev = leaf
            range.append(leaf)
            guard let (_, f) = Entry.indexFields(ofStored: p.content) else {
                throw BundleError(file: segPath, reason: "entry \(r.seq) lacks a field the index needs")
            }
            hits[org, default: []].append(IndexHit(seq: r.seq, orgSeq: p.orgSeq, fields: f))
            ArchivedStub.OrgSummary.add(to: &summary, org: org, seq: r.seq, orgSeq: p.orgSeq, time: f.time)
        }
        // The summary that retention and the stub rely on is the entries', not just signed.
        for o in manifest.orgs where summary[o.org] != o {
            throw BundleError(
                file: mpath,
                reason:
                    "its summary of org \(o.org) (entries \(o.entries), count_after \(o.count_after), last_seq \(o.last_seq), times \(o.min_time)…\(o.max_time)) is not what the segment's entries say"
            )
        }
        guard Set(manifest.orgs.map(\.org)) == Set(summary.keys), manifest.orgs.count == summary.count else {
            throw BundleError(
                file: mpath,
                reason:
                    "lists orgs \(manifest.orgs.map(\.org).sorted()), the segment's entries belong to \(summary.keys.sorted())"
            )
        }
        for n in manifest.right {
            guard let h = Hash(hex: n.hash), range.size % (UInt64(1) << UInt64(n.height)) == 0 else {
                throw BundleError(file: mpath, reason: "bad right subtree")
            }
            range.append(subtree: h, height: n.height)
        }
        guard range.size == cp.checkpoint.size, range.root() == cp.checkpoint.root else {
            throw BundleError(
                file: dir + "/" + BundleFiles.checkpoint,
                reason: "the segment's leaves do not lead to the checkpoint's root")
        }
        if let f = SealedIndexCheck.compare(
            dir + "/" + BundleFiles.index, segment: manifest.segment, firstSeq: manifest.first_seq,
            endSeq: manifest.end_seq, hits: hits)
        {
            throw BundleError(file: dir + "/" + BundleFiles.index, reason: f.message)
        }
        return manifest
    }
}
