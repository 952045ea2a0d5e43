import AuditBase
import Foundation

/// A checkpoint a writer (or any client) verified and keeps, so that the log can never show it
/// a shorter or different history later (format-spec.md §9.1, "every writer a witness"):
/// kept in a small file (the signed note; temp, fsync, rename), advanced only along
/// consistency proofs.
public enum HeldCheckpoint {
    /// A history the log showed that does not extend the one held.
    public struct Inconsistent: Error, Sendable, CustomStringConvertible {
        /// In words, naming what was held and what was shown.
        public var description: String
    }

    /// The checkpoint kept at `path` (nil when there is none yet), checked with `key`.
    public static func load(_ path: String, key: LogKeys) throws -> SignedCheckpoint? {
        guard let bytes = try FileOps.readFile(path, limit: 1 << 20) else { return nil }
        do { return try SignedCheckpoint(note: String(decoding: bytes, as: UTF8.self), verifier: key) } catch {
            throw AuditError(
                "the checkpoint kept in \(path) is not signed by \(key.text): \(error.description); remove the file only if you trust the log's current history"
            )
        }
    }

    /// Checks that `note` (signed by `key`) extends `held` with the consistency `proof`, and
    /// returns it to keep. A smaller tree is a rollback; the same size with another root, or
    /// a proof that does not verify, a fork: both are thrown as `Inconsistent`.
    public static func advance(
        held: SignedCheckpoint?, note: String, proof: [Hash], key: LogKeys
    ) throws -> SignedCheckpoint {
        let cp: SignedCheckpoint
        do { cp = try SignedCheckpoint(note: note, verifier: key) } catch {
            throw Inconsistent(description: "the log's checkpoint is not signed by \(key.text): \(error.description)")
        }
        guard let held else { return cp }
        let (old, new) = (held.checkpoint, cp.checkpoint)
        guard new.size >= old.size else {
            throw Inconsistent(
                description:
                    "ROLLBACK: the log now signs a tree of \(new.size) entries, but it signed one of \(old.size) earlier (root \(old.root.hex)): entries were removed"
            )
        }
        // Any tree extends the empty one: there is nothing to prove (RFC 9162 defines no proof
        // from size 0), only that the empty checkpoint held is the empty tree's.
        if old.size == 0 && old.root == Merkle.emptyRoot { return cp }
        guard Merkle.verifyConsistency(old: old.size, new: new.size, oldRoot: old.root, newRoot: new.root, proof: proof)
        else {
            throw Inconsistent(
                description:
                    "FORK: the log's tree of \(new.size) entries (root \(new.root.hex)) does not extend the one of \(old.size) it signed earlier (root \(old.root.hex)): its history was rewritten"
            )
        }
        return cp
    }

    /// Keeps `cp` at `path`.
    public static func save(_ cp: SignedCheckpoint, to path: String) throws {
        try FileOps.replaceFile(path, contents: Array(cp.note.utf8), mode: 0o600)
    }
}
