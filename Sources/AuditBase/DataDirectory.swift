import Foundation

/// The layout of a data directory (format-spec.md §1), named in one place as leveldb's
/// `filename.cc` names its files: the daemon, the tools and every layer ask it for a path
/// instead of joining names of their own. Inside a subdirectory, its owner names its files
/// (`SegmentNames`, `OrgIndex.fileName`, the tree's levels, the checkpoint log's two files, and
/// the markers other tiers leave beside segments).
public struct DataDirectory: Sendable, Hashable, CustomStringConvertible {
    /// The directory itself.
    public let path: String

    /// The data directory at `path`.
    public init(_ path: String) { self.path = path }

    /// `LOCK`: flock(2) held by the one writer.
    public var lock: String { path + "/LOCK" }
    /// `log.json`: the log's public identity (origin, verifier key).
    public var info: String { path + "/log.json" }
    /// `segments/`: open and sealed segments (and the markers of those that left).
    public var segments: String { path + "/segments" }
    /// `tree/`: the stored Merkle tree levels.
    public var tree: String { path + "/tree" }
    /// `tree/level-00.hashes`: the leaf level, one 32-byte hash per entry.
    public var treeLeaves: String { tree + "/level-00.hashes" }
    /// `index/`: one org index file per sealed segment.
    public var index: String { path + "/index" }
    /// `index/orgstate`: the org-state snapshot at the end of the last sealed segment.
    public var orgState: String { index + "/orgstate" }
    /// `checkpoints/`: every signed checkpoint (and the cosigned one).
    public var checkpoints: String { path + "/checkpoints" }
    /// `checkpoints/cosigned`: the newest checkpoint with a quorum of witness cosignatures.
    public var cosigned: String { checkpoints + "/cosigned" }
    /// `checkpoints/timestamps`: RFC 3161 tokens over checkpoints, as their entries recorded
    /// them (format-spec.md §8.7).
    public var timestamps: String { checkpoints + "/timestamps" }
    /// `personal/`: the values personal fields' commitments stand for, encrypted per subject;
    /// the one part of a log that forgets (format-spec.md §5.4.2).
    public var personal: String { path + "/personal" }
    /// `tokens.json`: read-port tokens, secrets stored as SHA-256 only.
    public var tokens: String { path + "/tokens.json" }
    /// `holds.json`: legal holds.
    public var holds: String { path + "/holds.json" }
    /// `retention.json`: per-org retention.
    public var retention: String { path + "/retention.json" }
    /// `following.json`: a read replica's place in the log it follows (the segment it reads next).
    public var following: String { path + "/following.json" }
    /// `auditd.socket`: the absolute path of the running daemon's ingest socket.
    public var daemonSocket: String { path + "/auditd.socket" }

    /// The signing key when none is given: `<parent>/auditd-keys/<name>.key`, outside the data
    /// directory so that copying or exporting the data never copies the key.
    public var defaultKey: String {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        return url.deletingLastPathComponent().path + "/auditd-keys/" + url.lastPathComponent + ".key"
    }

    /// The path.
    public var description: String { path }
}
