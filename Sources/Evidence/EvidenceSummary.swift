import AuditBase
import Foundation

/// The figures of an evidence pack (format-spec.md §9.5), each computed from the export's
/// selected entries alone, so that a verifier recomputes every one: counts by category, action
/// and outcome; denied and failed actions; privileged changes; the actors with the most
/// consequential actions. A committed actor is named by its subject tag (`human:$s:TAG`),
/// never by a personal value; an entry withheld after an erasure is only counted.
public struct EvidenceSummary: Sendable {
    /// What a privileged change acts on: roles, permissions, retention, legal holds, tokens,
    /// policies, administrators.
    public static let privilegedObjects: Set<String> = [
        "role", "roles", "permission", "permissions", "privilege", "privileges", "retention", "legal_hold", "policy",
        "token", "admin",
    ]
    /// The last word of an action that changes them (a check or an evaluation changes nothing).
    public static let changeVerbs: Set<String> = [
        "assigned", "unassigned", "granted", "revoked", "removed", "added", "created", "deleted", "changed", "updated",
        "set", "initiated", "released", "rotated", "enabled", "disabled", "elevated",
    ]
    /// How many actors the summary ranks.
    public static let topActors = 10

    var entries = 0
    var withheld = 0
    var byCategory: [String: Int] = [:]
    var byAction: [String: Int] = [:]
    var byOutcome: [String: Int] = [:]
    var deniedOrFailed: [String: Int] = [:]
    var privileged: [String: Int] = [:]
    var actors: [String: (consequential: Int, total: Int)] = [:]

    public init() {}

    /// Whether an action is a privileged change: category `org_settings`; an export
    /// (last word `exported`); or a word before the last among `privilegedObjects` and the
    /// last among `changeVerbs` (`access.role.assigned`, `audit.token.created`).
    public static func isPrivileged(category: String, action: String) -> Bool {
        let words = action.split(separator: ".").map(String.init)
        guard let last = words.last else { return category == "org_settings" }
        return category == "org_settings" || last == "exported"
            || (changeVerbs.contains(last) && words.dropLast().contains { privilegedObjects.contains($0) })
    }

    /// Counts one selected entry: its canonical content, or nil when withheld.
    public mutating func add(content: [UInt8]?) {
        entries += 1
        guard let content, let o = (try? JSONSerialization.jsonObject(with: Data(content))) as? [String: Any] else {
            withheld += 1
            return
        }
        let category = o["category"] as? String ?? ""
        let action = o["action"] as? String ?? ""
        let outcome = o["outcome"] as? String ?? ""
        byCategory[category, default: 0] += 1
        byAction[action, default: 0] += 1
        byOutcome[outcome, default: 0] += 1
        let bad = outcome == "denied" || outcome == "failure"
        let priv = Self.isPrivileged(category: category, action: action)
        if bad { deniedOrFailed[action, default: 0] += 1 }
        if priv { privileged[action, default: 0] += 1 }
        let actor = Self.actorName(o["actor"])
        var a = actors[actor] ?? (0, 0)
        a.total += 1
        if bad || priv { a.consequential += 1 }
        actors[actor] = a
    }

    /// `type:id`, with a committed id as its subject tag.
    static func actorName(_ v: Any?) -> String {
        guard let a = v as? [String: Any] else { return "?" }
        let type = a["type"] as? String ?? "?"
        if let id = a["id"] as? String { return type + ":" + id }
        if let c = a["id"] as? [String: Any], let s = c["$s"] as? String { return type + ":$s:" + s }
        return type + ":?"
    }

    /// The summary as the pack holds it (`summary.json`), for the range it covers.
    public func json(org: String, from: String, to: String) -> [String: Any] {
        let ranked = actors.sorted {
            ($0.value.consequential, $0.value.total, $1.key) > ($1.value.consequential, $1.value.total, $0.key)
        }.prefix(Self.topActors)
        return [
            "org": org, "from": from, "to": to, "entries": entries, "withheld": withheld,
            "by_category": byCategory, "by_action": byAction, "by_outcome": byOutcome,
            "denied_or_failed": ["count": deniedOrFailed.values.reduce(0, +), "by_action": deniedOrFailed],
            "privileged_changes": ["count": privileged.values.reduce(0, +), "by_action": privileged],
            "top_actors": ranked.map {
                ["actor": $0.key, "consequential": $0.value.consequential, "total": $0.value.total] as [String: Any]
            },
        ]
    }
}
