import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle

/// `GET /v1/orgs/:org/feed` (format-spec.md §9.2): an org's entries as NDJSON, oldest first
/// from `cursor`, then each new one as it becomes durable, for SIEM forwarders that follow the
/// log without polling. Same token rules as every org route (the route group checks them).
extension ReadPort {
    /// Pause between looks for new entries once the feed has caught up.
    static let feedPoll = Duration.milliseconds(200)
    /// An empty line this often while nothing arrives, so proxies keep the stream open.
    static let feedHeartbeat = Duration.seconds(15)
    /// How often a running feed checks that its token is still valid.
    static let feedTokenCheck = Duration.seconds(1)

    func feed(_ req: Request, _ ctx: OrgContext) async throws -> Response {
        let q = req.uri.queryParameters
        var cursor: UInt64?
        if let c = q.get("cursor") {
            guard let v = UInt64(c) else {
                throw HTTPError(
                    .badRequest, message: "cursor must be the seq of the last entry received (a whole number)")
            }
            guard v < ledger.storedCount else {
                throw HTTPError(
                    .badRequest,
                    message:
                        "cursor \(v) is past the end of the log (it holds \(ledger.storedCount) entries): give the seq of the last entry received"
                )
            }
            cursor = v
        }
        var limit: Int?
        if let l = q.get("limit") {
            guard let v = Int(l), v >= 1 else {
                throw HTTPError(
                    .badRequest,
                    message: "limit must be a whole number of at least 1 (the stream ends after that many entries)")
            }
            limit = v
        }
        let org = ctx.org
        let ledger = self.ledger
        let tokens = self.tokens
        let channel = ctx.channel
        let (start, most) = (cursor, limit)
        // The token is checked again while the feed runs: a revoked token's feed ends.
        let bearer = req.headers[.authorization].map { String($0.drop { $0 != " " }.drop { $0 == " " }) } ?? ""
        let body = ResponseBody { writer in
            var cur = start
            var sent = 0
            var quiet = ContinuousClock.now
            var checked = ContinuousClock.now
            func send(_ text: String) async throws { try await writer.write(ByteBuffer(string: text)) }
            // A reader that stops reading blocks a write; closing its connection when the
            // daemon stops fails that write, so a stalled feed never holds up a graceful stop
            // (and its final checkpoint). A feed that is reading ends the same way.
            try await withGracefulShutdownHandler {
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    if ContinuousClock.now - checked >= Self.feedTokenCheck {
                        guard tokens.authenticate(bearer) != nil else { break }
                        checked = .now
                    }
                    let want = min(500, (most ?? Int.max) - sent)
                    let after = cur
                    // The search and the lines are made on the query pool: a chunk is CPU work,
                    // and ten feeds making theirs on the shared concurrency pool (two threads
                    // here) held up everything else on it, a graceful stop included.
                    let (chunk, last, count, next) = try await self.query {
                        let (entries, next) = try ledger.search(
                            org: org, newestFirst: false, limit: want, cursor: after, timeLimit: .milliseconds(80))
                        // Only durable entries: the tree holds exactly those.
                        let durable = ledger.size
                        var chunk = ""
                        var last: UInt64?
                        var count = 0
                        for e in entries {
                            guard e.seq < durable else { break }
                            chunk += Self.entryJSON(e, ledger) + "\n"
                            last = e.seq
                            count += 1
                        }
                        return (chunk, last, count, entries.isEmpty ? next : nil)
                    }
                    if let last { cur = last }
                    sent += count
                    if let next { cur = max(cur ?? 0, next) }
                    if !chunk.isEmpty {
                        try await send(chunk)
                        quiet = .now
                    }
                    if let most, sent >= most { break }
                    if chunk.isEmpty {
                        if ContinuousClock.now - quiet >= Self.feedHeartbeat {
                            try await send("\n")
                            quiet = .now
                        }
                        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.feedPoll) }
                    }
                }
            } onGracefulShutdown: {
                channel.close(promise: nil)
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "application/x-ndjson", .cacheControl: "no-store"], body: body)
    }
}
