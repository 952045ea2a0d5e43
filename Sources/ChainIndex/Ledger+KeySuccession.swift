import AuditBase
import AuditEntries
import Foundation
import LogProofs
import SegmentStore

#if canImport(Glibc)
import Glibc
#endif

/// Handing the log's key on (format-spec.md §8.8).
///
/// 1. An entry `log.key.rotated` (org `_operator`) naming both keys and the grace is appended;
///    the handover size H is one past its seq, so every checkpoint from H on commits to it.
/// 2. Once it is durable (commit thread), the statement (origin, old key, new key, H, H + grace)
///    is signed by both keys and added to `log.json`'s `key_successions` (temp, fsync, rename).
/// 3. The new key signs from then on; the checkpoint at H and every one up to H + grace carry
///    the old key's signature too (while this process runs), so a verifier that holds only
///    the old key, and has not yet followed the statement, still checks them.
///
/// A crash between 1 and 2 leaves an entry that records a handover the log never made: the
/// old key stays in force (auditd starts with it), and the operator rotates again.
extension Ledger {
    /// The org and action of a handover's entry.
    public static let keyRotationOrg = "_operator"
    public static let keyRotationAction = "log.key.rotated"

    /// What a handover did.
    public struct HandOver: Sendable {
        /// The log's record of it.
        public var record: Receipt
        /// The statement both keys signed.
        public var succession: KeySuccession
    }

    /// Hands the log's key to `new` (a key named by the log's origin) at the next entry, the
    /// old key co-signing checkpoints for `grace` more entries. Returns once the statement is
    /// recorded and the new key signs.
    public func handOver(to new: NoteSigner, grace: UInt64, actor: String, via: String) throws -> HandOver {
        guard !isFollower else { throw Self.followerRefusal }
        guard let queue else { throw GroupCommitStopped() }
        let old = verifier.current
        guard new.name == origin else {
            throw AuditError(
                .invalidArgument,
                "the new key is named '\(new.name)'; this log's keys are named by its origin '\(origin)' (make one with `auditctl key generate --name \(origin)`)"
            )
        }
        guard !verifier.keys.contains(new.verifier) else {
            throw AuditError(
                .invalidArgument, "\(new.verifier.text) has already signed for this log: hand over to a new key")
        }
        guard grace <= 1 << 40 else { throw AuditError(.invalidArgument, "grace \(grace) is over 2^40 entries") }
        let now = ReceivedAt.now()
        let record: JSONValue = .object([
            JSONMember("org", .string(Self.keyRotationOrg)), JSONMember("category", .string("credentials")),
            JSONMember("action", .string(Self.keyRotationAction)),
            JSONMember("actor", .object([JSONMember("type", .string("human")), JSONMember("id", .string(actor))])),
            JSONMember(
                "target",
                .object([JSONMember("type", .string("log_key")), JSONMember("id", .string(new.verifier.text))])),
            JSONMember("outcome", .string("success")),
            JSONMember("source", .object([JSONMember("service", .string(via))])),
            JSONMember("occurred_at", .string(Timestamp.format(now))),
            JSONMember(
                "metadata",
                .object([
                    JSONMember("old_key", .string(old.text)), JSONMember("new_key", .string(new.verifier.text)),
                    JSONMember("grace", .string(String(grace))),
                ])),
        ])
        let prepared: PreparedEntry
        do {
            prepared = try Entry.prepare(
                value: record, receivedAt: now, writer: Writer(uid: getuid(), gid: getgid(), via: via))
        } catch { throw AuditError(.invalidArgument, "cannot record the handover: \(error)") }
        guard let r = try queue.submitAndWait([.handOver(prepared, new, grace: grace)]).first ?? nil else {
            throw AuditError("the handover's entry was not stored")
        }
        let s = verifier.successions.last
        guard let s, s.new == new.verifier, s.handover == r.seq + 1 else {
            throw AuditError(
                "the handover's entry is stored as \(r.seq), but the statement could not be recorded (\(writeState)): the old key stays in force; rotate again"
            )
        }
        return HandOver(record: r, succession: s)
    }

    /// A follower (a read replica) takes the followed log's statement: it must be signed by
    /// the key in force and by the new one, and hand over after the last; it is recorded in
    /// `log.json`, so exports the follower serves carry it. One already followed is ignored.
    public func follow(_ s: KeySuccession) throws {
        guard isFollower else {
            throw AuditError(.invalidArgument, "only a follower takes another log's key successions")
        }
        try keyLock.withLock {
            guard !keys.successions.contains(s) else { return }
            var next = keys
            do { try next.follow(s) } catch { throw AuditError(.corrupt, "key succession: \(error)") }
            var info = try Self.readInfo(directory: directory)
            info.key_successions = next.notes
            try Self.writeInfo(info, directory: directory)
            keys = next
        }
    }

    /// Step 2 and 3 (commit thread, after the entry at `handover - 1` is durable).
    func completeHandOver(to new: NoteSigner, handover: UInt64, grace: UInt64) throws {
        guard let old = keyLock.withLock({ signer }) else { return }
        let s = try KeySuccession.sign(old: old, new: new, handover: handover, grace: grace)
        var info = try Self.readInfo(directory: directory)
        var keys = try info.keys()
        try keys.follow(s)
        info.key_successions = keys.notes
        try Self.writeInfo(info, directory: directory)
        keyLock.withLock {
            self.keys = keys
            signer = new
            retiring = (old, s.graceEnd)
        }
        try signCheckpoint(size: handover)
    }

    /// The note of checkpoint text `text` of `size` entries: signed by the key in force, and
    /// by the key it replaced while `size` is within that one's grace.
    func signNote(_ text: String, size: UInt64, signer: NoteSigner) throws -> String {
        let note = try signer.sign(text)
        guard let r = keyLock.withLock({ retiring }) else { return note }
        guard size <= r.graceEnd else {
            keyLock.withLock { retiring = nil }
            return note
        }
        return try Note.cosign(note, with: r.signer)
    }
}
