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
        /// Whether committed values were erased (the subject had a key).
        public var erased: Bool
        /// Entries that name the subject in the clear, withheld from readers from now on.
        public var withheld: Int
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
    /// entry, then destroys the subject's key. Entries that name the subject in the clear
    /// (written before the log committed personal fields) cannot be erased: the record lists
    /// them (its `withheld_sha256`) and readers withhold them from then on. `actor` is who
    /// asked (recorded as a human actor `id`), `via` how. `check` runs first, under the
    /// erasure lock (the legal-hold rule of the layer above); a throw refuses the erasure
    /// with nothing changed.
    public func erase(
        org: String, subject: String, reason: String, authority: String, actor: String, via: String,
        check: () throws -> Void
    ) throws -> Erasure {
        guard !isFollower else { throw Self.followerRefusal }
        return try erasureLock.withLock {
            try check()
            for (name, v) in [("reason", reason), ("authority", authority)]
            where v.isEmpty || v.utf8.count > EntrySchema.maxMetadataString {
                throw AuditError(.invalidArgument, "\(name) must be 1-\(EntrySchema.maxMetadataString) bytes")
            }
            let existing = personal.existingKey(org: org, subject: subject)
            let withheld = try entriesInClear(org: org, subject: subject)
            guard existing != nil || !withheld.isEmpty else {
                throw AuditError(
                    .notFound,
                    "org \(org) holds no personal values of subject \(subject): no entry names it, in a protected field or in the clear, or it was erased already"
                )
            }
            // A subject named only in the clear gets a key for its tag alone: the record names
            // it by the tag, which names no one once the key is gone.
            guard let key = existing ?? personal.key(org: org, subject: subject) else {
                throw AuditError("the personal store takes no new subjects now (it is full or cannot be written)")
            }
            if withheld.isEmpty {
                try personal.withheld.removePending()
            } else {
                try personal.withheld.writePending(withheld)
            }
            let intent = ErasureIntent(org: org, tag: key.tag.text, from: size, authority: authority)
            try FileOps.replaceFile(intentPath, contents: Array(try JSONEncoder().encode(intent)), mode: 0o600)
            let now = ReceivedAt.now()
            var metadata = [
                JSONMember("subject_tag", .string(key.tag.text)), JSONMember("authority", .string(authority)),
                JSONMember("reason", .string(reason)),
                JSONMember(
                    "erased",
                    .string(
                        existing == nil
                            ? "nothing: no value of this subject was committed"
                            : "every personal value of this subject in the org's entries before this one")),
            ]
            if !withheld.isEmpty {
                metadata += [
                    JSONMember("withheld", .string(String(withheld.count))),
                    JSONMember("withheld_sha256", .string(Personal.withheldDigest(withheld))),
                ]
            }
            let record: JSONValue = .object([
                JSONMember("org", .string(org)), JSONMember("category", .string("privacy")),
                JSONMember("action", .string(Personal.erasureAction)),
                JSONMember("actor", .object([JSONMember("type", .string("human")), JSONMember("id", .string(actor))])),
                JSONMember(
                    "target",
                    .object([JSONMember("type", .string("data_subject")), JSONMember("id", .string(key.tag.text))])),
                JSONMember("outcome", .string("success")),
                JSONMember("source", .object([JSONMember("service", .string(via))])),
                JSONMember("occurred_at", .string(Timestamp.format(now))),
                JSONMember("metadata", .object(metadata)),
            ])
            let prepared: PreparedEntry
            do {
                prepared = try Entry.prepare(
                    value: record, receivedAt: now, writer: Writer(uid: getuid(), gid: getgid(), via: via),
                    keys: subjectKeys)
            } catch {
                try? FileOps.unlink(intentPath)
                try? personal.withheld.removePending()
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
                try? personal.withheld.removePending()
                throw error
            }
            if Self.pauseAfterRecord > 0 { Thread.sleep(forTimeInterval: Self.pauseAfterRecord) }
            try finish(tag: key.tag, recordSeq: receipt.seq, authority: authority, withheld: withheld)
            return Erasure(tag: key.tag, record: receipt, erased: existing != nil, withheld: withheld.count)
        }
    }

    /// The entries of `org` not yet withheld that name `subject` in the clear
    /// (`Personal.namesInClear`), in increasing order: only entries below `clearBelow` may.
    /// Read through the org's text search (the subject's id is in their bytes).
    func entriesInClear(org: String, subject: String) throws -> [UInt64] {
        let below = min(size, clearBelow)
        guard below > 0 else { return [] }
        var out: [UInt64] = []
        var cursor: UInt64?
        repeat {
            let (page, next) = try search(
                org: org, text: subject, newestFirst: false, limit: 4096, cursor: cursor, budget: 1 << 20)
            for e in page where e.seq < below && personal.withheld.record(withholding: e.seq) == nil {
                if let v = try? Entry.decodeStored(e.content), Personal.namesInClear(v, subject: subject) {
                    out.append(e.seq)
                }
            }
            if page.contains(where: { $0.seq >= below }) { break }
            cursor = next
        } while cursor != nil
        return out
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

    /// The erasure that withholds entry `seq` (it names an erased subject in the clear), if
    /// one does. `finish` journals the erasure before the entries it withholds, so a withheld
    /// entry always has its record here.
    public func withholding(_ seq: UInt64) -> ErasureRecord? {
        guard !personal.withheld.isEmpty, let r = personal.withheld.record(withholding: seq) else { return nil }
        return personal.erasure(recordSeq: r)
    }

    /// Steps 3-5 (the withheld entries journaled after the erasure, before the key goes).
    private func finish(tag: SubjectTag, recordSeq: UInt64, authority: String, withheld: [UInt64]) throws {
        try personal.recordErasure(ErasureRecord(tag: tag, recordSeq: recordSeq, authority: authority))
        if !withheld.isEmpty { try personal.withheld.record(recordSeq, withholds: withheld) }
        try personal.destroyKey(tag: tag)
        if Self.pauseAfterKey > 0 { Thread.sleep(forTimeInterval: Self.pauseAfterKey) }
        try personal.withheld.removePending()
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
                v["action"]?.stringValue == Personal.erasureAction, v["target"]?["id"]?.stringValue == intent.tag
            {
                // The list written before the record must be the one it signs.
                let withheld = try personal.withheld.readPending()
                let signed = v["metadata"]?["withheld_sha256"]?.stringValue
                guard signed == (withheld.isEmpty ? nil : Personal.withheldDigest(withheld)) else {
                    throw AuditError(
                        .corrupt,
                        "\(personal.withheld.pendingPath) does not hold the entries erasure record \(seq) withholds (its SHA-256 differs); the erasure cannot be completed: report this"
                    )
                }
                try finish(tag: tag, recordSeq: seq, authority: intent.authority, withheld: withheld)
                return "completed the erasure recorded by entry \(seq)"
            }
            seq += 1
        }
        try personal.withheld.removePending()
        try FileOps.unlink(intentPath)
        try FileOps.fsyncDirectory(personal.directory)
        return "dropped an erasure that was never recorded (run `auditctl erase` again)"
    }
}
