import AuditBase
import AuditEntries
import Foundation
import PersonalStore

/// Erasure (format-spec.md §5.4.3): a subject's personal values are forgotten under a recorded
/// authority, and every proof still holds.
///
/// The order, so that a key is never gone without its record: 1. the intent is written
/// (`personal/erasing`, with the log's size); 2. the `data_subject.erased` entry is appended
/// and durable; 3. the completed erasure is journaled (`personal/erasures`: tag, the entry's
/// seq, authority: nothing personal); 4. the subject's key is destroyed (`personal/subjects`
/// rewritten without it); 5. the intent is removed. A crash after 2 leaves the record with the
/// key present: the next open finds the intent and the record after its size, and does 3-5.
/// A crash before 2 leaves no record: the next open drops the intent and the key stays.
extension Ledger {
    /// What an erasure did.
    public struct Erasure: Sendable {
        /// The subject's tag: the `$s` of every commitment that is now erased.
        public var tag: SubjectTag
        /// The `data_subject.erased` entry.
        public var record: Receipt
    }

    /// The erasure in progress, kept in `personal/erasing` until its key is destroyed.
    struct ErasureIntent: Codable {
        var org: String
        var tag: String
        var from: UInt64
        var authority: String
    }

    var intentPath: String { personal.directory + "/erasing" }

    /// Tests only: seconds to wait once the record is durable and before the key goes, and
    /// once the key is gone and before the intent goes, so a test can kill the process at the
    /// moments that matter (real crashes, not simulated ones).
    static let pauseAfterRecord =
        ProcessInfo.processInfo.environment["AUDITLOG_TEST_PAUSE_AFTER_ERASURE_RECORD"].flatMap(Double.init) ?? 0
    static let pauseAfterKey =
        ProcessInfo.processInfo.environment["AUDITLOG_TEST_PAUSE_AFTER_ERASURE_KEY"].flatMap(Double.init) ?? 0

    /// Erases `subject`'s personal values in `org`: records the erasure as a signed `privacy`
    /// entry, then destroys the subject's key. `actor` is who asked (recorded as a human
    /// actor `id`), `via` how. `check` runs first, under the erasure lock (the legal-hold rule
    /// of the layer above); a throw refuses the erasure with nothing changed.
    public func erase(
        org: String, subject: String, reason: String, authority: String, actor: String, via: String,
        check: () throws -> Void
    ) throws -> Erasure {
        guard !isFollower else { throw Self.followerRefusal }
        return try erasureLock.withLock {
            try check()
            guard let key = personal.existingKey(org: org, subject: subject) else {
                throw AuditError(
                    .notFound,
                    "org \(org) holds no personal values of subject \(subject): it never appeared in a protected field (personal_fields = commit), or it was erased already"
                )
            }
            for (name, v) in [("reason", reason), ("authority", authority)]
            where v.isEmpty || v.utf8.count > EntrySchema.maxMetadataString {
                throw AuditError(.invalidArgument, "\(name) must be 1-\(EntrySchema.maxMetadataString) bytes")
            }
            let intent = ErasureIntent(
                org: org, tag: key.tag.text, from: size, authority: authority)
            try FileOps.replaceFile(intentPath, contents: Array(try JSONEncoder().encode(intent)), mode: 0o600)
            let now = ReceivedAt.now()
            let record: JSONValue = .object([
                JSONMember("org", .string(org)), JSONMember("category", .string("privacy")),
                JSONMember("action", .string("data_subject.erased")),
                JSONMember("actor", .object([JSONMember("type", .string("human")), JSONMember("id", .string(actor))])),
                JSONMember(
                    "target",
                    .object([JSONMember("type", .string("data_subject")), JSONMember("id", .string(key.tag.text))])),
                JSONMember("outcome", .string("success")),
                JSONMember("source", .object([JSONMember("service", .string(via))])),
                JSONMember("occurred_at", .string(Timestamp.format(now))),
                JSONMember(
                    "metadata",
                    .object([
                        JSONMember("subject_tag", .string(key.tag.text)), JSONMember("authority", .string(authority)),
                        JSONMember("reason", .string(reason)),
                        JSONMember(
                            "erased",
                            .string("every personal value of this subject in the org's entries before this one")),
                    ])),
            ])
            let prepared: PreparedEntry
            do {
                prepared = try Entry.prepare(
                    value: record, receivedAt: now, writer: Writer(uid: getuid(), gid: getgid(), via: via),
                    keys: subjectKeys)
            } catch {
                try? FileOps.unlink(intentPath)
                throw AuditError(.invalidArgument, "cannot record the erasure: \(error)")
            }
            let receipt: Receipt
            do {
                guard let r = try appendAndWait([prepared]).first else { throw AuditError("the log stored no record") }
                receipt = r
            } catch {
                // No record: nothing may be destroyed. The intent goes (the next open would
                // find no record after its size and drop it too).
                try? FileOps.unlink(intentPath)
                throw error
            }
            if Self.pauseAfterRecord > 0 { Thread.sleep(forTimeInterval: Self.pauseAfterRecord) }
            try finish(tag: key.tag, recordSeq: receipt.seq, authority: authority)
            return Erasure(tag: key.tag, record: receipt)
        }
    }

    /// The committed fields of `e` as a reader may see them (empty when it commits to
    /// nothing). A store that cannot be read withholds its values and says why.
    public func disclose(_ e: StoredEntry) -> [Disclosed] {
        do { return try personal.disclose(seq: e.seq, content: e.content) } catch {
            guard Personal.mayHoldCommitments(e.content), let v = try? Entry.decodeStored(e.content) else { return [] }
            return Personal.commitments(in: v).map {
                Disclosed(path: $0.path, tag: $0.tag, state: .withheld("the personal store cannot be read: \(error)"))
            }
        }
    }

    /// Steps 3-5.
    private func finish(tag: SubjectTag, recordSeq: UInt64, authority: String) throws {
        try personal.recordErasure(ErasureRecord(tag: tag, recordSeq: recordSeq, authority: authority))
        try personal.destroyKey(tag: tag)
        if Self.pauseAfterKey > 0 { Thread.sleep(forTimeInterval: Self.pauseAfterKey) }
        try FileOps.unlink(intentPath)
        try FileOps.fsyncDirectory(personal.directory)
    }

    /// At open: completes an erasure whose record is in the log, drops one whose is not.
    /// Returns what it did, for the recovery report.
    func completeErasure() throws -> String? {
        guard let bytes = try FileOps.readFile(intentPath, limit: 1 << 16) else { return nil }
        guard let intent = try? JSONDecoder().decode(ErasureIntent.self, from: Data(bytes)),
            let tag = SubjectTag(text: intent.tag)
        else {
            throw AuditError(
                .corrupt,
                "\(intentPath) is not an erasure intent; if no erasure was running, remove it and run `auditctl erase` again"
            )
        }
        var seq = intent.from
        while seq < size {
            let e = try entry(seq: seq)
            if e.org == intent.org, let v = try? Entry.decodeStored(e.content),
                v["action"]?.stringValue == "data_subject.erased", v["target"]?["id"]?.stringValue == intent.tag
            {
                try finish(tag: tag, recordSeq: seq, authority: intent.authority)
                return "completed the erasure recorded by entry \(seq)"
            }
            seq += 1
        }
        try FileOps.unlink(intentPath)
        try FileOps.fsyncDirectory(personal.directory)
        return "dropped an erasure that was never recorded (run `auditctl erase` again)"
    }
}
