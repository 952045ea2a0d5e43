import AuditBase
import AuditEntries
import Foundation
import LogProofs
import SegmentStore

/// Retention per org (`DATA/retention.json`, format-spec.md §12.4): seven years by default,
/// extendable per org, never shorter than the default and never shortened.
public struct RetentionPolicy: Codable, Sendable, Equatable {
    /// Years every org's entries are kept at least.
    public var default_years: Int = 7
    /// Orgs kept longer.
    public var orgs: [String: Int] = [:]

    /// The default policy.
    public init() {}

    /// Years `org`'s entries are kept.
    public func years(for org: String) -> Int { max(default_years, orgs[org] ?? default_years) }

    static func path(_ dir: String) -> String { DataDirectory(dir).retention }

    /// The policy of a data directory.
    public static func load(dir: String) throws -> RetentionPolicy {
        guard let b = try FileOps.readFile(path(dir)) else { return RetentionPolicy() }
        let d = Data(b)
        do { return try JSONDecoder().decode(RetentionPolicy.self, from: d) } catch {
            throw AuditError("\(path(dir)) is malformed: \(error)")
        }
    }

    /// Setting `org`'s retention to `years`, refusing to go below the default or below its
    /// current value; nothing is written until the change is committed.
    public static func prepareExtend(dir: String, org: String, years: Int) throws -> Change<RetentionPolicy> {
        guard Entry.isValidOrgName(org) else {
            throw AuditError("'\(org)' is not an org name (1–64 of [A-Za-z0-9_.:@/-])")
        }
        guard years <= 100 else { throw AuditError("\(years) years is more than the 100 a retention may be set to") }
        var p = try load(dir: dir)
        guard years >= p.default_years else {
            throw AuditError("retention is never shorter than the default of \(p.default_years) years")
        }
        guard years >= p.years(for: org) else {
            throw AuditError("org \(org) is kept \(p.years(for: org)) years; retention can only be extended")
        }
        p.orgs[org] = years
        let path = path(dir)
        return Change(p) {
            var now = try load(dir: dir)
            now.orgs[org] = max(years, now.orgs[org] ?? 0)
            try save(now, path: path)
        }
    }

    /// Sets `org`'s retention at once; see `prepareExtend`.
    public static func extend(dir: String, org: String, years: Int) throws -> RetentionPolicy {
        let c = try prepareExtend(dir: dir, org: org, years: years)
        try c.commit()
        return try load(dir: dir)
    }

    static func save<T: Encodable>(_ v: T, path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileOps.replaceFile(path, contents: Array(try enc.encode(v)) + [0x0A])
    }
}

/// A legal hold: while active, none of the org's entries (optionally only those received in a
/// time range) may be purged, whatever their age.
public struct LegalHold: Codable, Sendable, Equatable {
    /// Hold id.
    public var id: String
    /// The org.
    public var org: String
    /// Received-at lower bound (RFC 3339), if the hold covers a range.
    public var from: String?
    /// Received-at upper bound (RFC 3339, exclusive).
    public var to: String?
    /// Why.
    public var reason: String
    /// Who ordered it (a person, a court reference, a policy).
    public var authority: String
    /// When it was set.
    public var created_at: String
    /// When it was released.
    public var released_at: String?
    /// Its `legal_hold.initiated` entry, bound by seq to the tree's leaf (format-spec.md §1).
    public var audit: EntryBinding?
    /// Its `legal_hold.released` entry, likewise, once released: a release stands on it.
    public var released_audit: EntryBinding?

    /// Why the hold's bound `legal_hold.initiated` entry does not stand (checked against the
    /// leaf hashes `leaf` of a tree of `size`), or nil when it does or none is bound.
    public func placementProblem(leaf: (UInt64) throws -> Hash, size: UInt64) -> String? {
        guard let audit else { return nil }
        let e: JSONValue
        do { e = try audit.open(leaf: leaf, size: size) } catch { return "legal hold \(id): \(error)" }
        let m = e["metadata"]
        guard e["action"]?.stringValue == "legal_hold.initiated", e["target"]?["id"]?.stringValue == id,
            e["org"]?.stringValue == org,
            m?["reason"]?.stringValue == reason, m?["authority"]?.stringValue == authority,
            m?["from"]?.stringValue == from, m?["to"]?.stringValue == to
        else {
            return
                "legal hold \(id) differs from the legal_hold.initiated entry it carries (seq \(audit.seq)): org, range, reason or authority edited"
        }
        return nil
    }

    /// Why the hold's release does not stand on the `legal_hold.released` entry it carries,
    /// or nil when it does (or it is not released, or carries none: see `released_audit`).
    public func releaseProblem(leaf: (UInt64) throws -> Hash, size: UInt64) -> String? {
        guard released_at != nil, let released_audit else { return nil }
        let e: JSONValue
        do { e = try released_audit.open(leaf: leaf, size: size) } catch {
            return "legal hold \(id)'s release: \(error)"
        }
        guard e["action"]?.stringValue == "legal_hold.released", e["target"]?["id"]?.stringValue == id,
            e["org"]?.stringValue == org
        else {
            return
                "legal hold \(id) is marked released, but the entry it carries (seq \(released_audit.seq)) is not its release: made by hand"
        }
        return nil
    }

    /// True if it is active and covers `org` entries received between `min` and `max` (ms).
    public func covers(org o: String, min: Int64, max: Int64) -> Bool {
        guard released_at == nil, org == o else { return false }
        if let f = from.flatMap(Timestamp.parse), max < f { return false }
        if let t = to.flatMap(Timestamp.parse), min >= t { return false }
        return true
    }
}

/// The legal holds of a data directory (`DATA/holds.json`).
public enum LegalHolds {
    static func path(_ dir: String) -> String { DataDirectory(dir).holds }

    /// Refuses an erasure in `org` while a hold covers it (format-spec.md §5.4.3): the hold
    /// wins, as the law orders it.
    public static func refuseErasure(dir: String, org: String) throws {
        if let h = try load(dir: dir).first(where: { $0.org == org && $0.released_at == nil }) {
            throw AuditError(
                .invalidArgument,
                "org \(org) is under legal hold \(h.id) (\(h.reason); ordered by \(h.authority)): nothing of it may be erased while the hold stands; erase after `auditctl hold release`"
            )
        }
    }

    /// Every hold, released ones included.
    public static func load(dir: String) throws -> [LegalHold] {
        guard let b = try FileOps.readFile(path(dir)) else { return [] }
        let d = Data(b)
        do { return try JSONDecoder().decode([LegalHold].self, from: d) } catch {
            throw AuditError("\(path(dir)) is malformed: \(error)")
        }
    }

    /// A new hold, checked; nothing is written until the change is committed.
    public static func prepareCreate(
        dir: String, org: String, from: String?, to: String?, reason: String, authority: String, now: Date
    ) throws -> Change<LegalHold> {
        guard Entry.isValidOrgName(org) else {
            throw AuditError("'\(org)' is not an org name (1–64 of [A-Za-z0-9_.:@/-])")
        }
        guard !reason.isEmpty, !authority.isEmpty else {
            throw AuditError("a legal hold needs a reason and the authority that ordered it")
        }
        for t in [from, to].compactMap({ $0 }) where Timestamp.parse(t) == nil {
            throw AuditError("'\(t)' is not an RFC 3339 UTC time")
        }
        _ = try load(dir: dir)
        let id = "hold-" + Array(try Ed25519.randomSeed().prefix(4)).hex
        let h = LegalHold(
            id: id, org: org, from: from, to: to, reason: reason, authority: authority,
            created_at: Timestamp.format(Int64(now.timeIntervalSince1970 * 1000)), released_at: nil)
        let path = path(dir)
        return Change(
            h,
            bound: { audit in
                var all = try load(dir: dir)
                var placed = h
                placed.audit = audit
                all.append(placed)
                try RetentionPolicy.save(all, path: path)
            })
    }

    /// Places a hold at once; see `prepareCreate`.
    public static func create(
        dir: String, org: String, from: String?, to: String?, reason: String, authority: String, now: Date
    ) throws -> LegalHold {
        let c = try prepareCreate(
            dir: dir, org: org, from: from, to: to, reason: reason, authority: authority, now: now)
        try c.commit()
        return c.value
    }

    /// The release of hold `id`, checked; nothing is written until the change is committed.
    public static func prepareRelease(dir: String, id: String, now: Date) throws -> Change<LegalHold> {
        let all = try load(dir: dir)
        guard let i = all.firstIndex(where: { $0.id == id }) else {
            throw AuditError("no legal hold with id \(id) (see `auditctl hold list`)")
        }
        guard all[i].released_at == nil else { throw AuditError("legal hold \(id) is already released") }
        var h = all[i]
        h.released_at = Timestamp.format(Int64(now.timeIntervalSince1970 * 1000))
        let released = h
        let path = path(dir)
        return Change(
            released,
            bound: { audit in
                var all = try load(dir: dir)
                guard let k = all.firstIndex(where: { $0.id == id }) else {
                    throw AuditError("legal hold \(id) vanished while it was being released")
                }
                guard all[k].released_at == nil else { return }
                all[k].released_at = released.released_at
                all[k].released_audit = audit
                try RetentionPolicy.save(all, path: path)
            })
    }

    /// Releases a hold at once; see `prepareRelease`.
    public static func release(dir: String, id: String, now: Date) throws -> LegalHold {
        let c = try prepareRelease(dir: dir, id: id, now: now)
        try c.commit()
        return c.value
    }
}
