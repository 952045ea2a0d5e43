import AuditBase
import AuditIndex
import Foundation
import LogProofs
import LogTree
import SegmentStore

/// A bundle that verifies on its own must also be the one its slot and its log expect
/// (format-spec.md §12.1): named for its segment, the bundle its stub records (same manifest,
/// same org summary), and holding the leaves the log's tree holds for its range.
public enum BundlePlacement {
    /// Checks verified bundle `name` (its manifest `manifest`, in `dir`) against data
    /// directory `dataDir`: the stub of its segment, if there is one, and the tree.
    public static func check(
        name: String, dir: String, manifest m: BundleManifest, dataDir: String, verifier: LogKeys
    ) throws {
        guard name == BundleFiles.name(m.segment) else {
            throw BundleError(
                file: dir,
                reason:
                    "holds the bundle of segment \(m.segment) (\(BundleFiles.name(m.segment))), not of the segment its name says: it was moved or swapped"
            )
        }
        let stubPath = DataDirectory(dataDir).segments + "/" + ArchivedStub.fileName(m.segment)
        if FileOps.exists(stubPath) {
            let stub = try ArchivedStub.load(stubPath)
            try stub.checkNote(verifier: verifier)
            let sha = SHA256.hash(try ArchiveFiles.read(dir + "/" + BundleFiles.manifest)).hex
            guard stub.bundle == name, stub.manifest_sha256 == sha else {
                throw BundleError(
                    file: stubPath,
                    reason:
                        "the stub records bundle \(stub.bundle) with manifest \(stub.manifest_sha256.prefix(16))…, the archive holds \(name) with manifest \(sha.prefix(16))…"
                )
            }
            guard stub.first_seq == m.first_seq, stub.end_seq == m.end_seq, stub.orgs == m.orgs else {
                throw BundleError(
                    file: stubPath, reason: "the stub's range or org summary differs from the bundle's signed manifest")
            }
        }
        let treeDir = DataDirectory(dataDir).tree
        guard FileOps.exists(treeDir) else { return }
        let tree = try TreeStore(directory: treeDir, readOnly: true)
        guard tree.size >= m.end_seq else { return }
        let leaves = try ArchiveFiles.read(dir + "/" + BundleFiles.leaves)
        // Read again here: it may have changed since the bundle was verified.
        guard m.end_seq >= m.first_seq, leaves.count % 32 == 0, UInt64(leaves.count / 32) == m.end_seq - m.first_seq
        else {
            throw BundleError(
                file: dir + "/" + BundleFiles.leaves,
                reason: "holds \(leaves.count) bytes, not 32 for each of entries \(m.first_seq)..<\(m.end_seq)")
        }
        var seq = m.first_seq
        while seq < m.end_seq {
            let n = Int(min(8192, m.end_seq - seq))
            let hot = try tree.leaves(from: seq, count: n)
            let at = Int(seq - m.first_seq) * 32
            for (i, h) in hot.enumerated() where !leaves[(at + i * 32)..<(at + i * 32 + 32)].elementsEqual(h.bytes) {
                throw BundleError(
                    file: dir + "/" + BundleFiles.leaves,
                    reason:
                        "entry \(seq + UInt64(i)) is not the entry the log's tree holds at that position: the bundle is not this log's"
                )
            }
            seq += UInt64(n)
        }
    }

    /// Stubs of `dataDir` whose bundle (not purged) is not among `present`.
    public static func missing(dataDir: String, present: Set<String>) throws -> [ArchivedStub] {
        let seg = DataDirectory(dataDir).segments
        guard FileOps.exists(seg) else { return [] }
        return try FileOps.list(seg).sorted().filter { $0.hasSuffix(".archived") }.compactMap {
            let s = try ArchivedStub.load(seg + "/" + $0)
            return s.purged_at == nil && !present.contains(s.bundle) ? s : nil
        }
    }
}
