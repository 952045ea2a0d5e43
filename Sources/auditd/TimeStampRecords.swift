import AuditBase
import AuditEntries
import AuditIndex
import ChainIndex
import Foundation
import LogProofs
import TimeStamping

/// A time-stamp token as the log records it (format-spec.md §8.7), both ways: the entry the
/// daemon appends for a token, and the token read back from such an entry. `checkpoints/
/// timestamps` is derived from these entries (`catchUp`), so a log recovered from the bucket,
/// a read replica, or a data directory that lost the file finds its tokens again.
enum TimeStampRecords {
    /// The org and action of a token's entry.
    static let org = "_operator"
    static let action = "log.checkpoint.timestamped"
    /// Characters of base64 per string of the token's metadata list (a metadata string is at
    /// most 1,024 bytes).
    static let chunk = 1024

    /// The entry (JSON, as a writer sends it) recording `token` over `cp` from `authority`.
    static func entry(
        _ cp: Checkpoint, authority: String, time: Int64, token: [UInt8], signer: String, serial: String
    ) throws -> [UInt8] {
        let b64 = Data(token).base64EncodedString()
        var chunks: [String] = []
        var i = b64.startIndex
        while i < b64.endIndex {
            let j = b64.index(i, offsetBy: chunk, limitedBy: b64.endIndex) ?? b64.endIndex
            chunks.append(String(b64[i..<j]))
            i = j
        }
        let entry: [String: Any] = [
            "org": org, "category": "monitoring", "action": action,
            "actor": ["type": "service", "id": "auditd"], "target": ["type": "checkpoint", "id": String(cp.size)],
            "outcome": "success", "source": ["service": "auditd"], "occurred_at": Timestamp.format(time),
            "metadata": [
                "authority": String(authority.prefix(1024)), "signer": String(signer.prefix(1024)),
                "tree_size": Int(cp.size), "root_hash": Data(cp.root.bytes).base64EncodedString(),
                "serial": String(serial.prefix(1024)), "token": chunks,
            ] as [String: Any],
        ]
        return Array(
            try JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    /// The token an entry records; nil for any other entry (or one that does not parse).
    static func stamp(_ e: StoredEntry) -> StampedCheckpoint? {
        guard let v = try? Entry.decodeStored(e.content), v["org"]?.stringValue == org,
            v["action"]?.stringValue == action, let m = v["metadata"],
            let authority = m["authority"]?.stringValue,
            case .int(let n)? = m["tree_size"], let size = UInt64(exactly: n),
            let root = m["root_hash"]?.stringValue.flatMap({ Data(base64Encoded: $0) }).flatMap({
                Hash(bytes: Array($0))
            }),
            let time = v["occurred_at"]?.stringValue.flatMap(Timestamp.parse),
            case .array(let parts)? = m["token"],
            let token = Data(base64Encoded: parts.compactMap(\.stringValue).joined()),
            !token.isEmpty
        else { return nil }
        return StampedCheckpoint(
            entry: e.seq, size: size, root: root, authority: authority, time: time, token: Array(token))
    }

    /// Adds to `journal` the tokens of the entries after its last one (the hot tier's: tokens
    /// of archived entries that the file lost are not found again until restored).
    static func catchUp(_ journal: TimeStampJournal, ledger: Ledger) throws {
        var cursor = journal.lastEntry
        while true {
            let hits = try ledger.query(
                org: org, filter: QueryFilter(action: action), newestFirst: false, limit: 500, cursor: cursor)
            guard let lastHit = hits.last else { return }
            for e in try ledger.entries(seqs: hits.map(\.seq)) {
                if let s = stamp(e), s.token.count <= TimeStampJournal.maxToken { try journal.append(s) }
            }
            cursor = lastHit.seq
        }
    }

    /// Whether the log records any token (in its hot tier).
    static func any(_ ledger: Ledger) -> Bool {
        guard ledger.holds(org: org) else { return false }
        return ((try? ledger.query(org: org, filter: QueryFilter(action: action), limit: 1)) ?? []).isEmpty == false
    }
}
