import AuditBase
import AuditEntries
import Foundation
import Hummingbird
import NIOCore

/// `GET /v1/orgs/:org/activity`: how many of the org's entries arrived in each time bucket,
/// by category (the console's chart). Counted from the org index alone (no entry is read),
/// with the list's filters; `from`/`to` default to the last 30 days.
extension ReadPort {
    static let activityBudget = Duration.milliseconds(500)
    static let maxBuckets = 366

    func activity(_ req: Request, _ ctx: OrgContext) async throws -> Response {
        let p = try QueryParameters(req, org: ctx.org, personal: ledger.personal)
        let buckets =
            try req.uri.queryParameters.get("buckets").map { v in
                guard let n = Int(v), (1...Self.maxBuckets).contains(n) else {
                    throw HTTPError(
                        .badRequest,
                        message: "buckets: '\(v.prefix(40))' is not a whole number from 1 to \(Self.maxBuckets)")
                }
                return n
            } ?? 30
        var filter = p.filter
        let now = Int64(Date().timeIntervalSince1970 * 1000) + 1
        let to = filter.to ?? now
        let from = filter.from ?? (to - 30 * 86_400_000)
        guard from < to else { throw HTTPError(.badRequest, message: "from must be before to") }
        // Each bucket spans a whole number of milliseconds, at least one (bucket_ms is never 0).
        guard to - from >= Int64(buckets) else {
            throw HTTPError(
                .badRequest,
                message:
                    "from and to are \(to - from) ms apart: \(buckets) buckets need at least \(buckets) ms (ask for fewer buckets or a wider range)"
            )
        }
        filter.from = from
        filter.to = to
        let org = ctx.org
        let ledger = self.ledger
        let budget = Self.activityBudget
        let f = filter
        let body: String = try await query {
            let span = to - from
            var counts = [[Int]](repeating: [Int](repeating: 0, count: Category.allCases.count), count: buckets)
            var cursor: UInt64?
            var complete = true
            let started = ContinuousClock.now
            while true {
                let hits = try ledger.query(org: org, filter: f, newestFirst: true, limit: 10_000, cursor: cursor)
                for h in hits {
                    let b = Int((h.fields.time - from) * Int64(buckets) / span)
                    if b >= 0, b < buckets { counts[b][Int(h.fields.category.code)] += 1 }
                }
                guard hits.count == 10_000, let last = hits.last else { break }
                cursor = last.seq
                if ContinuousClock.now - started > budget {
                    complete = false
                    break
                }
            }
            let cats = Category.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ",")
            let rows = counts.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: ",")
            return
                "{\"org\":\(Self.quote(org)),\"from\":\"\(Timestamp.format(from))\",\"to\":\"\(Timestamp.format(to))\",\"bucket_ms\":\(span / Int64(buckets)),"
                + "\"categories\":[\(cats)],\"counts\":[\(rows)],\"complete\":\(complete)}"
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
