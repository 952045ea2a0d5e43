import AuditBase
import Foundation

/// The signer's own memory of the newest checkpoint it signed (format-spec.md §8.3), kept
/// beside the signing key, outside the data directory:
///
///     "auditlog-signer-state/1\n" origin "\n" size "\n" hex(root) "\n"
///
/// It is written durably before a checkpoint is published, and the ledger refuses to sign a
/// checkpoint smaller than it, or one whose tree does not hold its root at its size (not
/// consistent with it), and refuses to open a log that was rolled back below it. So someone
/// who edits the data directory while auditd is stopped (cuts the tail, empties the checkpoint
/// log) cannot make the key sign a shorter or forked history.
public struct SignerState: Sendable, Equatable {
    /// The origin the key signs for.
    public var origin: String
    /// Size of the newest checkpoint signed.
    public var size: UInt64
    /// Its root.
    public var root: Hash

    static let tag = "auditlog-signer-state/1"

    /// The state after signing a checkpoint of `size` entries with root `root` for `origin`.
    package init(origin: String, size: UInt64, root: Hash) {
        self.origin = origin
        self.size = size
        self.root = root
    }

    /// The state file of the signing key at `keyPath`.
    public static func path(forKey keyPath: String) -> String { keyPath + ".state" }

    /// The state at `path`, nil when the key has not signed through a ledger that keeps one.
    public static func load(_ path: String) throws -> SignerState? {
        guard let b = try FileOps.readFile(path, limit: 4096) else { return nil }
        let lines = String(decoding: b, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 4, lines[0] == tag, let size = UInt64(lines[2]), let root = Hash(hex: String(lines[3]))
        else {
            throw AuditError(
                .corrupt, "signer state is malformed (expected \(tag), origin, size, root)", path: path, offset: 0)
        }
        return SignerState(origin: String(lines[1]), size: size, root: root)
    }

    /// Writes the state durably (temp file, fsync, rename, directory fsync).
    public func save(_ path: String) throws {
        try FileOps.replaceFile(
            path, contents: Array("\(Self.tag)\n\(origin)\n\(size)\n\(root.hex)\n".utf8), mode: 0o600)
    }

    /// Checks that a tree which has `treeSize` leaves and gives `rootAt` at any size extends
    /// this state; throws an `AuditError` naming both sizes when it does not.
    package func check(treeSize: UInt64, rootAt: (UInt64) throws -> Hash, what: String) throws {
        guard treeSize >= size else {
            throw AuditError(
                "\(what) holds \(treeSize) entries, but this signing key already signed a checkpoint of \(size) entries (root \(root.hex)): the log was rolled back; restore the missing entries from the archive or a backup (the signer refuses to sign a smaller log)"
            )
        }
        guard try rootAt(size) == root else {
            throw AuditError(
                "\(what) does not hold the tree this signing key signed at size \(size) (root \(root.hex)): its history was rewritten; the signer refuses to sign a checkpoint inconsistent with one it signed before"
            )
        }
    }
}
