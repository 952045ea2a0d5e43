import AuditBase
import AuditClient
import AuditWire
import Foundation
import LogProofs

/// Every writer a witness (format-spec.md §9.1): a writer keeps, in a small file, the newest
/// checkpoint of the log it verified, and checks over the ingest socket that the log still
/// extends it. For services embedding `AuditClient`; `auditctl append --state` uses it.
///
/// It fails closed: a log that shows no checkpoint, or a smaller one, while the writer holds
/// one is a rollback; a witnessed checkpoint that cannot be had is never taken as a pass (the
/// log's own checkpoint is checked instead, and the result says it was not witnessed).
public struct WriterWitness: Sendable {
    /// A history that does not extend the one kept, or a checkpoint the witnesses did not vouch for.
    public struct Refused: Error, Sendable, CustomStringConvertible {
        /// In words.
        public var description: String
    }

    /// What a check established.
    public struct Outcome: Sendable {
        /// The checkpoint kept afterwards (nil while the log and the writer have none).
        public var kept: SignedCheckpoint?
        /// Set when witnesses were asked for and no checkpoint with their quorum covered what
        /// was asked: the log's own checkpoint was checked instead (it extends the one kept),
        /// but nothing was witnessed. Says why, in words.
        public var unwitnessed: String?
    }

    /// The file holding the kept checkpoint (the signed note).
    public let path: String
    /// The log's verifier key.
    public let key: LogKeys
    /// Witnesses whose cosignatures the kept checkpoint must carry (none: the log's own).
    public let witnesses: [CosignatureVerifier]
    /// How many of them.
    public let quorum: Int
    /// How long to wait for a checkpoint that covers what is asked (checkpoints are signed
    /// within a second, cosigned within a few).
    public let patience: Duration

    /// A writer witness keeping its checkpoint at `path`. Each witness key counts once.
    public init(
        path: String, key: LogKeys, witnesses: [CosignatureVerifier] = [], quorum: Int? = nil,
        patience: Duration = .seconds(5)
    ) throws {
        let q = quorum ?? witnesses.count
        guard q >= 0, q <= witnesses.count else {
            throw Refused(description: "quorum \(q) needs at least that many witness keys")
        }
        do { try CosignatureVerifier.distinct(witnesses) } catch { throw Refused(description: error.description) }
        self.path = path
        self.key = key
        self.witnesses = witnesses
        self.quorum = q
        self.patience = patience
    }

    /// The checkpoint kept, if any.
    public func kept() throws -> SignedCheckpoint? { try HeldCheckpoint.load(path, key: try followed()) }

    /// Where the key successions this writer followed are kept (a JSON list of statements).
    var successionsPath: String { path + ".keys" }

    /// The key this writer holds and the successions it followed from it (format-spec.md §8.8).
    func followed() throws -> LogKeys {
        guard let bytes = try FileOps.readFile(successionsPath, limit: 1 << 20) else { return key }
        guard let notes = try? JSONDecoder().decode([String].self, from: Data(bytes)) else {
            throw Refused(description: "\(successionsPath) is not a JSON list of key successions")
        }
        return try chain(notes)
    }

    /// `key` followed through `notes`; a statement not signed by the key it replaces is refused.
    private func chain(_ notes: [String]) throws -> LogKeys {
        do { return try LogKeys(trusting: key.original, successions: key.notes + notes) } catch {
            do { return try LogKeys(trusting: key.original, successions: notes) } catch {
                throw Refused(description: "the log's key successions: \(error.description): not followed")
            }
        }
    }

    /// The keys to check `reply` with: those followed so far, extended by the statements the
    /// log sends. A log that shows fewer, or other, statements than were followed is refused.
    private func keys(for reply: CheckpointReply) throws -> (keys: LogKeys, followed: Int) {
        let had = try followed()
        let shown = try chain(reply.successions)
        guard shown.successions.starts(with: had.successions) else {
            throw Refused(
                description:
                    "FORK: the log shows key successions that do not extend the \(had.successions.count) this writer followed (kept in \(successionsPath))"
            )
        }
        return (shown, had.successions.count)
    }

    /// Checks that the log's checkpoint extends the kept one, and keeps the newest checkpoint
    /// that is both consistent and (with witnesses) cosigned by a quorum.
    ///
    /// 1. With witnesses: wait up to `patience` for a cosigned checkpoint of at least
    ///    `atLeast` entries and of the kept size; one with too few valid cosignatures is refused.
    /// 2. Without one: the log's own latest checkpoint is checked against the kept one (a
    ///    rollback or a fork is refused), nothing new is kept, and `unwitnessed` says so.
    /// 3. A log with no checkpoint at all while the writer holds a non-empty one is a rollback.
    ///
    /// `atLeast` is one past the last acknowledged entry, after appending (0 before).
    /// Throws `Refused` on a rollback, a fork or missing cosignatures, the file unchanged.
    @discardableResult
    public func check(_ client: AuditClient, atLeast: UInt64 = 0) async throws -> Outcome {
        let held = try kept()
        let heldSize = held?.checkpoint.size ?? 0
        var unwitnessed: String?
        if !witnesses.isEmpty {
            switch try await latest(client, since: heldSize, cosigned: true, atLeast: max(atLeast, heldSize)) {
            case .reply(let reply, let cp) where cp.size >= max(atLeast, heldSize):
                var by: [CosignatureVerifier] = []
                for w in witnesses {
                    do { if try w.cosignature(in: reply.note) != nil { by.append(w) } } catch {
                        throw Refused(description: "the log's cosigned checkpoint: \(error): not kept")
                    }
                }
                guard by.count >= quorum else {
                    throw Refused(
                        description:
                            "the log's cosigned checkpoint carries \(by.count) valid cosignature(s) of the \(quorum) required from the given witnesses: not kept"
                    )
                }
                return Outcome(kept: try advance(held, reply), unwitnessed: nil)
            case .reply(_, let cp):
                unwitnessed =
                    "the newest checkpoint cosigned by the witnesses has \(cp.size) entries, fewer than the \(max(atLeast, heldSize)) asked for"
            case .none(let why):
                unwitnessed = "no checkpoint cosigned by the witnesses: \(why)"
            }
        }
        switch try await latest(client, since: heldSize, cosigned: false, atLeast: atLeast) {
        case .none(let why):
            if let held, heldSize > 0 {
                throw Refused(
                    description:
                        "ROLLBACK: the log shows no signed checkpoint (\(why)), but it signed one of \(heldSize) entries earlier (root \(held.checkpoint.root.hex)): its history was removed (the checkpoint this writer kept is in \(path))"
                )
            }
            if atLeast > 0 {
                throw Refused(description: "no signed checkpoint covers the \(atLeast) entries appended: \(why)")
            }
            return Outcome(kept: held, unwitnessed: unwitnessed)
        case .reply(let reply, let cp):
            if atLeast > 0 && cp.size < atLeast && cp.size >= heldSize {
                throw Refused(
                    description:
                        "the log's newest checkpoint has \(cp.size) entries, but entries up to \(atLeast) were acknowledged: not covered within \(patience)"
                )
            }
            if unwitnessed == nil { return Outcome(kept: try advance(held, reply), unwitnessed: nil) }
            // Checked, but not witnessed: only a checkpoint the witnesses vouch for is kept.
            _ = try consistent(held, reply, keys: try keys(for: reply).keys)
            return Outcome(kept: held, unwitnessed: unwitnessed)
        }
    }

    private enum Latest {
        case reply(CheckpointReply, Checkpoint)
        case none(String)
    }

    /// The log's latest (or newest cosigned) checkpoint, waiting up to `patience` for one of
    /// at least `atLeast` entries. A smaller one is returned when nothing larger comes.
    private func latest(_ client: AuditClient, since: UInt64, cosigned: Bool, atLeast: UInt64) async throws -> Latest {
        let deadline = ContinuousClock.now + patience
        var last: Latest = .none("the log did not answer")
        while true {
            do {
                let r = try await client.checkpoint(since: since, cosigned: cosigned)
                let body = (try? Cosignature.split(note: r.note).body) ?? ""
                guard let cp = try? Checkpoint(text: body) else {
                    throw Refused(
                        description: "the log answered a checkpoint that does not parse: \(r.note.prefix(200))")
                }
                last = .reply(r, cp)
                if cp.size >= atLeast { return last }
            } catch let e as WireError where e.code == WireErrorCode.unavailable.rawValue {
                last = .none(e.message)
            }
            if ContinuousClock.now >= deadline { return last }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    private func consistent(
        _ held: SignedCheckpoint?, _ reply: CheckpointReply, keys: LogKeys
    ) throws
        -> SignedCheckpoint
    {
        do {
            return try HeldCheckpoint.advance(
                held: held, note: reply.note, proof: reply.proof.compactMap { Hash(bytes: $0) }, key: keys)
        } catch let e as HeldCheckpoint.Inconsistent {
            throw Refused(description: "\(e) (the checkpoint this writer kept is in \(path))")
        }
    }

    private func advance(_ held: SignedCheckpoint?, _ reply: CheckpointReply) throws -> SignedCheckpoint {
        let (keys, followed) = try keys(for: reply)
        let cp = try consistent(held, reply, keys: keys)
        if keys.successions.count > followed {
            try FileOps.replaceFile(
                successionsPath, contents: Array(try JSONEncoder().encode(keys.notes)), mode: 0o600)
        }
        try HeldCheckpoint.save(cp, to: path)
        return cp
    }
}
