import AuditEntries
import Foundation

/// One entry as the org index sees it.
public struct IndexHit: Sendable, Equatable {
    /// Sequence number.
    public var seq: UInt64
    /// Position in the org's chain.
    public var orgSeq: UInt64
    /// Filterable fields.
    public var fields: IndexFields

    /// A row.
    public init(seq: UInt64, orgSeq: UInt64, fields: IndexFields) {
        self.seq = seq
        self.orgSeq = orgSeq
        self.fields = fields
    }

    /// A row that holds no storage (its strings empty), made anew each time: what a row moved
    /// out of an array leaves in its place.
    static var vacant: IndexHit {
        IndexHit(
            seq: 0, orgSeq: 0, fields: IndexFields(time: 0, category: .access, outcome: .success, action: "", actor: "")
        )
    }
}

/// A query's filters; nil means "any".
public struct QueryFilter: Sendable, Equatable {
    /// Server receive time from (inclusive), ms.
    public var from: Int64?
    /// Server receive time to (exclusive), ms.
    public var to: Int64?
    /// Category.
    public var category: Category?
    /// Exact action, or a prefix ending in `*` (`auth.login.*`).
    public var action: String?
    /// Actor `type:id`, or just the id; either may end in `*` for a prefix (`usr_*`,
    /// `agent:*`).
    public var actor: String?
    /// Outcome.
    public var outcome: Outcome?

    /// No filter.
    public init(
        from: Int64? = nil, to: Int64? = nil, category: Category? = nil, action: String? = nil, actor: String? = nil,
        outcome: Outcome? = nil
    ) {
        self.from = from
        self.to = to
        self.category = category
        self.action = action
        self.actor = actor
        self.outcome = outcome
    }

    /// Whether it selects by time alone (or not at all): the only filter whose answer says
    /// nothing of an entry's content, so the only one an export proves complete and the only
    /// one a withheld entry is shown under (as its stub).
    public var isTimeRangeOnly: Bool { category == nil && outcome == nil && action == nil && actor == nil }

    package func matches(_ f: IndexFields) -> Bool {
        if let from, f.time < from { return false }
        if let to, f.time >= to { return false }
        if let category, f.category != category { return false }
        if let outcome, f.outcome != outcome { return false }
        if let action {
            if action.hasSuffix("*") {
                if !f.action.hasPrefix(action.dropLast()) { return false }
            } else if f.action != action {
                return false
            }
        }
        if let actor, !Self.actorMatches(f.actor, actor) { return false }
        return true
    }

    /// `actor` (`type:id`) against a filter: equal to it or to its id alone, or, when the filter
    /// ends in `*`, beginning with the rest of it (either form).
    package static func actorMatches(_ actor: String, _ filter: String) -> Bool {
        if filter.hasSuffix("*") {
            let prefix = filter.dropLast()
            if actor.hasPrefix(prefix) { return true }
            guard let colon = actor.firstIndex(of: ":") else { return false }
            return actor[actor.index(after: colon)...].hasPrefix(prefix)
        }
        return actor == filter || actor.hasSuffix(":" + filter)
    }
}

/// Entries of an org that sit in an archived (or purged) bundle rather than the hot tier.
public struct ArchivedRange: Sendable, Equatable {
    /// The bundle to restore.
    public var bundle: String
    /// Its segment.
    public var segment: UInt64
    /// The segment's sequence range.
    public var firstSeq: UInt64
    /// One past it.
    public var endSeq: UInt64
    /// How many of the org's entries it holds.
    public var entries: UInt64
    /// True if retention expired and the bundle was purged (only its tombstone remains).
    public var purged: Bool
    /// The bundle's `manifest.json` as its stub keeps it (nil for a stub made before stubs
    /// kept it), and the log's signed note over its hash (format-spec.md §12.3): what lets an
    /// export name the bundle with its range, checked (§9.3).
    public var manifest: String?
    /// The signed manifest note.
    public var manifestNote: String
}
