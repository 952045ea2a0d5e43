import AuditBase
import AuditEntries
import AuditIndex
import Hummingbird
import PersonalStore

/// The query parameters of the read port (format-spec.md §9.2), each checked: a value out of
/// range is a 400 that names the parameter, never a silent default.
struct QueryParameters {
    /// Longest `q`, `action` or `actor` accepted.
    static let maxText = 1024
    /// Largest `limit`.
    static let maxLimit = 1000

    let filter: QueryFilter
    /// Free-text search (never stored: exports record only that there was one).
    let text: String?
    /// The filters as given, for an export's header.
    let echo: [String: String]
    let limit: Int
    let newestFirst: Bool
    let cursor: UInt64?

    /// The parameters of `req`; with `personal`, a filter or search naming a data subject of
    /// `org` by id is turned into its subject tag, which is what committed entries hold
    /// (format-spec.md §5.4.1).
    init(_ req: Request, org: String? = nil, personal: PersonalStore? = nil) throws {
        let q = req.uri.queryParameters
        var f = QueryFilter()
        var echo: [String: String] = [:]
        func bounded(_ name: String) throws -> String? {
            guard let v = q.get(name) else { return nil }
            guard v.utf8.count <= Self.maxText else {
                throw HTTPError(.badRequest, message: "\(name): \(v.utf8.count) bytes; the limit is \(Self.maxText)")
            }
            return v
        }
        if let v = q.get("from") {
            guard let t = Timestamp.parse(v) else {
                throw HTTPError(.badRequest, message: "from: '\(v.prefix(80))' is not an RFC 3339 UTC time")
            }
            f.from = t
            echo["from"] = v
        }
        if let v = q.get("to") {
            guard let t = Timestamp.parse(v) else {
                throw HTTPError(.badRequest, message: "to: '\(v.prefix(80))' is not an RFC 3339 UTC time")
            }
            f.to = t
            echo["to"] = v
        }
        if let v = q.get("category") {
            guard let c = Category(rawValue: v) else {
                throw HTTPError(
                    .badRequest,
                    message:
                        "category: '\(v.prefix(80))' is not one of \(Category.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            f.category = c
            echo["category"] = v
        }
        if let v = q.get("outcome") {
            guard let o = Outcome(rawValue: v) else {
                throw HTTPError(.badRequest, message: "outcome: '\(v.prefix(80))' is not success, failure or denied")
            }
            f.outcome = o
            echo["outcome"] = v
        }
        if let v = try bounded("action") {
            f.action = v
            echo["action"] = v
        }
        if let v = try bounded("actor") {
            let resolved = org.flatMap { personal?.resolve(org: $0, actorFilter: v) } ?? v
            f.actor = resolved
            echo["actor"] = resolved
        }
        filter = f
        text = try bounded("q").flatMap { $0.isEmpty ? nil : $0 }.map { q in
            org.flatMap { personal?.existingKey(org: $0, subject: q)?.tag.text } ?? q
        }
        self.echo = echo
        if let v = q.get("limit") {
            guard let n = Int(v), (1...Self.maxLimit).contains(n) else {
                throw HTTPError(
                    .badRequest, message: "limit: '\(v.prefix(40))' is not a whole number from 1 to \(Self.maxLimit)")
            }
            limit = n
        } else {
            limit = 100
        }
        switch q.get("order") {
        case nil, "desc": newestFirst = true
        case "asc": newestFirst = false
        case let v?: throw HTTPError(.badRequest, message: "order: '\(v.prefix(40))' is not asc or desc")
        }
        if let c = q.get("cursor") {
            guard let v = UInt64(c) else {
                throw HTTPError(.badRequest, message: "cursor: not a cursor returned by this endpoint")
            }
            cursor = v
        } else {
            cursor = nil
        }
    }

    /// A non-negative integer parameter, or a 400 naming it.
    static func uint(_ s: String?, _ name: String) throws -> UInt64 {
        guard let s, let v = UInt64(s) else {
            throw HTTPError(.badRequest, message: "\(name) must be a non-negative integer")
        }
        return v
    }
}
