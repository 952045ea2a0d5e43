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
/// 1. On the commit thread, where the entry's seq `H - 1` is known: the statement (origin, old
///    key, new key, H, H + grace) is signed by both keys, and the entry `log.key.rotated` (org
///    `_operator`) holding it is sequenced with the group, so every checkpoint from size H on
///    commits to the statement itself.
/// 2. Once it is durable, the statement is added to `log.json`'s `key_successions` (temp,
///    fsync, rename).
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

    /// What the commit thread needs to hand over: the new key, the grace, who asked, when.
    struct HandOverPlan: Sendable {
        var new: NoteSigner
        var grace: UInt64
        var actor: String
        var via: String
        var receivedAt: Int64
    }

    /// Hands the log's key to `new` (a key named by the log's origin) at the next entry, the
    /// old key co-signing checkpoints for `grace` more entries. Returns once the statement is
    /// recorded and the new key signs.
    public func handOver(to new: NoteSigner, grace: UInt64, actor: String, via: String) throws -> HandOver {
        guard !isFollower else { throw Self.followerRefusal }
        guard let queue else { throw GroupCommitStopped() }
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
        let plan = HandOverPlan(new: new, grace: grace, actor: actor, via: via, receivedAt: ReceivedAt.now())
        guard let r = try queue.submitAndWait([.handOver(plan)]).first ?? nil else {
            throw AuditError(
                "the handover's entry was not stored: \(keyLock.withLock { handOverFailure }.map { "\($0)" } ?? "\(writeState)")"
            )
        }
        let s = verifier.successions.last
        guard let s, s.new == new.verifier, s.handover == r.seq + 1 else {
            throw AuditError(
                "the handover's entry is stored as \(r.seq), but the statement could not be recorded (\(writeState)): the old key stays in force; rotate again"
            )
        }
        return HandOver(record: r, succession: s)
    }

    /// Step 1 (commit thread): the statement for a handover at size `handover`, and the entry
    /// that records it.
    func handOverEntry(_ plan: HandOverPlan, handover: UInt64) throws -> (PreparedEntry, KeySuccession) {
        guard let old = keyLock.withLock({ signer }) else { throw Self.followerRefusal }
        let s = try KeySuccession.sign(old: old, new: plan.new, handover: handover, grace: plan.grace)
        let record: JSONValue = .object([
            JSONMember("org", .string(Self.keyRotationOrg)), JSONMember("category", .string("credentials")),
            JSONMember("action", .string(Self.keyRotationAction)),
            JSONMember(
                "actor", .object([JSONMember("type", .string("human")), JSONMember("id", .string(plan.actor))])),
            JSONMember(
                "target",
                .object([JSONMember("type", .string("log_key")), JSONMember("id", .string(s.new.text))])),
            JSONMember("outcome", .string("success")),
            JSONMember("source", .object([JSONMember("service", .string(plan.via))])),
            JSONMember("occurred_at", .string(Timestamp.format(plan.receivedAt))),
            JSONMember(
                "metadata",
                .object([
                    JSONMember("old_key", .string(s.old.text)), JSONMember("new_key", .string(s.new.text)),
                    JSONMember("handover", .string(String(s.handover))),
                    JSONMember("grace_end", .string(String(s.graceEnd))),
                    // Metadata strings hold no control characters: the note in base64.
                    JSONMember("statement", .string(Data(s.note.utf8).base64EncodedString())),
                ])),
        ])
        let e = try Entry.prepare(
            value: record, receivedAt: plan.receivedAt, writer: Writer(uid: getuid(), gid: getgid(), via: plan.via))
        return (e, s)
    }

    /// The signing key at `keyPath` for the log in `directory` (with `createNamed`, one is
    /// generated with that name if there is none), after finishing a handover a stop
    /// interrupted (`KeyFile.settle`, by the log's `log.json`). Every process that signs for a
    /// log loads its key here. `note` says what was finished or found, if anything.
    public static func signingKey(
        at keyPath: String, directory: String, createNamed name: String? = nil
    ) throws
        -> (signer: NoteSigner, created: Bool, note: String?)
    {
        var note: String?
        if let keys = try? verifierKey(directory: directory) {
            note = try KeyFile.settle(path: keyPath, current: keys.current)
        }
        guard let name else { return (try KeyFile.load(path: keyPath), false, note) }
        let (signer, created) = try KeyFile.loadOrCreate(path: keyPath, name: name)
        return (signer, created, note)
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

    /// Tests only: seconds to wait once the handover's entry is durable and before its
    /// statement goes into log.json, so a test can kill the process there (a real crash).
    static let pauseAfterHandOverRecord =
        ProcessInfo.processInfo.environment["AUDITLOG_TEST_PAUSE_AFTER_HANDOVER_RECORD"].flatMap(Double.init) ?? 0

    /// Steps 2 and 3 (commit thread, once the entry at `handover - 1` is durable).
    func completeHandOver(to new: NoteSigner, _ s: KeySuccession) throws {
        guard let old = keyLock.withLock({ signer }) else { return }
        if Self.pauseAfterHandOverRecord > 0 { Thread.sleep(forTimeInterval: Self.pauseAfterHandOverRecord) }
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
        try signCheckpoint(size: s.handover)
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
