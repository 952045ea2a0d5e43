import AuditClient
import AuditWire
import ChainIndex
import Foundation

/// Every writer a witness (format-spec.md §9.1): a writer keeps, in a small file, the newest
/// checkpoint of the log it verified, and checks over the ingest socket that the log still
/// extends it. For services embedding `AuditClient`; `auditctl append --state` uses it.
public struct WriterWitness: Sendable {
    /// A history that does not extend the one kept, or a checkpoint the witnesses did not vouch for.
    public struct Refused: Error, Sendable, CustomStringConvertible {
        /// In words.
        public var description: String
    }

    /// The file holding the kept checkpoint (the signed note).
    public let path: String
    /// The log's verifier key.
    public let key: NoteVerifier
    /// Witnesses whose cosignatures the kept checkpoint must carry (none: the log's own).
    public let witnesses: [CosignatureVerifier]
    /// How many of them.
    public let quorum: Int

    /// A writer witness keeping its checkpoint at `path`.
    public init(path: String, key: NoteVerifier, witnesses: [CosignatureVerifier] = [], quorum: Int? = nil) throws {
        let q = quorum ?? witnesses.count
        guard q >= 0, q <= witnesses.count else { throw Refused(description: "quorum \(q) needs at least that many witness keys") }
        self.path = path; self.key = key; self.witnesses = witnesses; self.quorum = q
    }

    /// The checkpoint kept, if any.
    public func kept() throws -> SignedCheckpoint? { try HeldCheckpoint.load(path, key: key) }

    /// Fetches the log's latest checkpoint (with witnesses: the newest cosigned one) through
    /// `client`, waiting up to 5 s for one of at least `atLeast` entries (one past the last
    /// acknowledged, after appending); checks that it extends the kept one and keeps it.
    /// Throws `Refused` on a rollback, a fork or missing cosignatures, the file unchanged.
    /// Returns the checkpoint kept afterwards (nil while the log has none).
    @discardableResult
    public func check(_ client: AuditClient, atLeast: UInt64 = 0) async throws -> SignedCheckpoint? {
        let held = try kept()
        var reply: CheckpointReply?
        for attempt in 0..<25 {
            if attempt > 0 { try await Task.sleep(for: .milliseconds(200)) }
            do { reply = try await client.checkpoint(since: held?.checkpoint.size ?? 0, cosigned: !witnesses.isEmpty) } catch let e as WireError where e.code == WireErrorCode.unavailable.rawValue {
                if atLeast == 0 && held == nil { break }
                continue
            }
            if let r = reply, let cp = try? Checkpoint(text: (try? Cosignature.split(note: r.note).body) ?? ""), cp.size < atLeast { continue }
            break
        }
        guard let reply else { return held }
        if !witnesses.isEmpty {
            // Only a checkpoint the witnesses vouch for is kept.
            let by = witnesses.filter { ((try? $0.cosignature(in: reply.note)) ?? nil) != nil }
            guard by.count >= quorum else {
                throw Refused(description: "the log's cosigned checkpoint carries \(by.count) valid cosignature(s) of the \(quorum) required from the given witnesses: not kept")
            }
            if let held, let cp = try? Checkpoint(text: Cosignature.split(note: reply.note).body), cp.size < held.checkpoint.size {
                return held  // The witnesses have not caught up with the one kept yet.
            }
        }
        do {
            let cp = try HeldCheckpoint.advance(held: held, note: reply.note, proof: reply.proof.compactMap { Hash(bytes: $0) }, key: key)
            try HeldCheckpoint.save(cp, to: path)
            return cp
        } catch let e as HeldCheckpoint.Inconsistent {
            throw Refused(description: "\(e) (the checkpoint this writer kept is in \(path))")
        }
    }
}
