import Archive
import AuditAccess
import AuditBase
import AuditEntries
import ChainIndex
import Foundation
import LogProofs
import LogTree

/// `tokens.json`, `holds.json` and `retention.json` are written only after their audit entry
/// is in the log (format-spec.md §1, §12.4), so the log is their witness: each file is checked
/// against the entries that record its changes. What could widen access or allow an early
/// purge is a failure (a token or a release nobody audited, a hold that disappeared, a
/// retention shorter than recorded); what could only keep more (a hold or a longer retention
/// without its entry) is a note.
struct OperatorRecords {
    /// The actions whose entries record changes to these files.
    static let actions = ["audit.token.", "legal_hold.", "retention.policy.", Ledger.keyRotationAction]

    var failures: [String] = []
    var notes: [String] = []

    /// Checks the files of data directory `dir` against `entries` (the contents of the hot
    /// entries with those actions, in order); `since` is the latest `received_at` of the
    /// archived segments: a record made after it must have its entry among them (an entry is
    /// received after its record is made, and received_at never decreases).
    /// With `orgs`, only holds and retention of those orgs are checked (and not tokens): the
    /// entries are then those orgs' only.
    init(dir: String, entries: [[UInt8]], since: Int64?, orgs: Set<String>? = nil) {
        var revoked: Set<String> = []
        var initiated: [String: JSONValue] = [:]
        var released: Set<String> = []
        var years: [String: Int] = [:]
        var rotations: [(new: String, statement: String)] = []
        for c in entries {
            guard let v = try? Entry.decodeStored(c), let action = v["action"]?.stringValue,
                let target = v["target"]?["id"]?.stringValue
            else { continue }
            switch action {
            case "audit.token.revoked": revoked.insert(target)
            case "legal_hold.initiated": initiated[target] = v
            case "legal_hold.released": released.insert(target)
            case Ledger.keyRotationAction:
                if let m = v["metadata"], let n = m["new_key"]?.stringValue {
                    let note = m["statement"]?.stringValue.flatMap { Data(base64Encoded: $0) }
                    rotations.append((n, note.map { String(decoding: $0, as: UTF8.self) } ?? ""))
                }
            case "retention.policy.changed":
                if let y = v["metadata"]?["years"]?.stringValue.flatMap(Int.init) {
                    years[target] = max(years[target] ?? 0, y)
                }
            default: break
            }
        }
        func recent(_ time: String?) -> Bool {
            guard let since, let t = time.flatMap(Timestamp.parse) else { return since == nil }
            return t > since
        }
        // Tokens: one that reads must stand on its own audit.token.created entry, which it
        // carries and which is checked against the tree's leaf at its seq (so the check needs
        // neither the archive nor a date); and it must not have been revoked in the log.
        let tree: TreeStore
        do { tree = try TreeStore(directory: DataDirectory(dir).tree, readOnly: true) } catch {
            failures.append("the tree of \(dir) cannot be read to check tokens.json and holds.json: \(error)")
            return
        }
        if orgs == nil {
            do {
                for t in try TokenStore.load(path: TokenStore.path(forData: dir)) where t.revoked_at == nil {
                    if revoked.contains(t.id) {
                        failures.append("tokens.json: token \(t.id) was revoked in the log but is active in the file")
                    }
                    if let why = t.auditProblem(leaf: { try tree.leaf($0) }, size: tree.size) {
                        failures.append("tokens.json: \(why)")
                    }
                }
            } catch { failures.append("tokens.json: \(error)") }
        }
        // Holds: none recorded may vanish, change or be released without its entry.
        do {
            let holds = try LegalHolds.load(dir: dir).filter { orgs?.contains($0.org) ?? true }
            let byId = Dictionary(holds.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            for (id, e) in initiated.sorted(by: { $0.key < $1.key }) {
                guard let h = byId[id] else {
                    failures.append(
                        "holds.json: legal hold \(id) of org \(e["org"]?.stringValue ?? "?") was placed in the log but is missing from the file"
                    )
                    continue
                }
                let m = e["metadata"]
                if h.org != e["org"]?.stringValue || h.reason != m?["reason"]?.stringValue
                    || h.authority != m?["authority"]?.stringValue
                    || h.from != m?["from"]?.stringValue || h.to != m?["to"]?.stringValue
                {
                    failures.append(
                        "holds.json: legal hold \(id) differs from the one placed in the log (org, range, reason or authority)"
                    )
                }
            }
            // A release stands on the entry it carries (checked against the tree, so an old
            // hold's release needs no archive), or on its entry in the hot tier: never on a date.
            for h in holds {
                if let why = h.placementProblem(leaf: { try tree.leaf($0) }, size: tree.size) {
                    failures.append("holds.json: \(why)")
                }
                if h.released_at != nil {
                    if h.released_audit != nil {
                        if let why = h.releaseProblem(leaf: { try tree.leaf($0) }, size: tree.size) {
                            failures.append("holds.json: \(why)")
                        }
                    } else if !released.contains(h.id) {
                        failures.append(
                            "holds.json: legal hold \(h.id) is marked released at \(h.released_at ?? ""), but no legal_hold.released entry is in the log or carried by the record"
                        )
                    }
                }
                if initiated[h.id] == nil, h.audit == nil, recent(h.created_at) {
                    notes.append(
                        "holds.json: legal hold \(h.id) has no legal_hold.initiated entry in the log (it only keeps more)"
                    )
                }
            }
            for id in released where byId[id]?.released_at == nil && byId[id] != nil {
                notes.append(
                    "holds.json: legal hold \(id) was released in the log but is still active in the file (it only keeps more)"
                )
            }
        } catch { failures.append("holds.json: \(error)") }
        // Retention: never below the built-in default, never below a recorded change.
        do {
            let p = try RetentionPolicy.load(dir: dir)
            if p.default_years < RetentionPolicy().default_years {
                failures.append(
                    "retention.json: default_years \(p.default_years) is below the built-in \(RetentionPolicy().default_years): retention is never shortened"
                )
            }
            for (org, y) in years.sorted(by: { $0.key < $1.key }) where p.years(for: org) < y {
                failures.append(
                    "retention.json: org \(org) is kept \(p.years(for: org)) years, but the log extended it to \(y)")
            }
        } catch { failures.append("retention.json: \(error)") }
        if orgs == nil { checkKeys(dir: dir, rotations: rotations, archived: since != nil) }
    }

    /// log.json's key successions (format-spec.md §8.8) are recorded only after their
    /// `log.key.rotated` entry is durable: each must have one holding the same statement
    /// (unless it may be archived), and an entry without a statement in log.json is a handover
    /// that did not finish.
    mutating func checkKeys(dir: String, rotations: [(new: String, statement: String)], archived: Bool) {
        let keys: LogKeys
        do { keys = try Ledger.verifierKey(directory: dir) } catch {
            failures.append("log.json: \(error)")
            return
        }
        for s in keys.successions where !rotations.contains(where: { $0.statement == s.note }) {
            let what =
                "log.json: the handover at size \(s.handover) to \(s.new.text) has no \(Ledger.keyRotationAction) entry holding its statement in the log"
            if archived { notes.append(what + " (it may be in an archived segment)") } else { failures.append(what) }
        }
        for r in rotations where !keys.successions.contains(where: { $0.note == r.statement }) {
            notes.append(
                "a \(Ledger.keyRotationAction) entry hands over to \(r.new) but log.json holds no statement for it: that handover did not finish (the key it names never signed)"
            )
        }
    }
}
