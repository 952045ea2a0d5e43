import AuditAccess
import ChainIndex
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import SegmentStore

/// The read port (format-spec.md §9.2, openapi.yaml): HTTP/JSON, GET only, bearer tokens bound
/// to one org (or operator scope). A request is served only when the token's org and the path's
/// org agree; the query engine reads only that org's index, so no endpoint can read, count or
/// reveal another org's entries.
struct ReadPort {
    let ledger: Ledger
    let tokens: TokenStore
    let registry: PrometheusCollectorRegistry
    let metrics: DaemonMetrics
    let health: HealthState
    let logger: Logger

    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: AppendOnlyMiddleware())
        router.get("/healthz") { _, _ in try self.healthz() }
        router.get("/metrics") { _, _ in
            self.metrics.observe(self.ledger)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: self.registry.emitToBuffer())))
        }
        router.get("/v1/checkpoint") { req, _ in
            _ = try self.scope(req)
            guard let cp = self.ledger.latestCheckpoint else { throw HTTPError(.notFound, message: "no checkpoint yet") }
            return Self.text(cp.note)
        }
        router.get("/v1/checkpoints/:size") { req, ctx in
            _ = try self.scope(req)
            let size = try Self.uint(ctx.parameters.get("size"), "size")
            guard let cp = try self.ledger.checkpoints.first(atLeast: size, verifier: self.ledger.verifier), cp.checkpoint.size == size else {
                throw HTTPError(.notFound, message: "no checkpoint was signed at size \(size); use /v1/checkpoint for the latest")
            }
            return Self.text(cp.note)
        }
        router.get("/v1/proofs/consistency") { req, _ in
            _ = try self.scope(req)
            let q = req.uri.queryParameters
            let old = try Self.uint(q.get("old"), "old")
            let latest = self.ledger.latestCheckpoint?.checkpoint.size ?? 0
            let new = try q.get("new").map { try Self.uint($0, "new") } ?? latest
            guard old <= new, new <= latest else { throw HTTPError(.badRequest, message: "need old ≤ new ≤ \(latest) (the latest checkpoint)") }
            let proof = try self.ledger.consistencyProof(old: old, new: new)
            return Self.json(["old_size": old, "new_size": new, "old_root": try self.ledger.tree.root(at: old).hex,
                              "new_root": try self.ledger.tree.root(at: new).hex, "proof": proof.map(\.hex)])
        }
        router.get("/v1/orgs/:org/entries") { req, ctx in try self.list(req, ctx) }
        router.get("/v1/orgs/:org/entries/:seq") { req, ctx in try self.one(req, ctx) }
        router.get("/v1/orgs/:org/proofs/inclusion") { req, ctx in try self.inclusion(req, ctx) }
        router.get("/v1/orgs/:org/export") { req, ctx in try self.export(req, ctx) }
        return router
    }

    // MARK: Auth

    func scope(_ req: Request) throws -> TokenScope {
        guard let h = req.headers[.authorization], h.hasPrefix("Bearer ") else {
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "send Authorization: Bearer <token> (create one with `auditctl token create`)")
        }
        guard let s = tokens.authenticate(String(h.dropFirst(7))) else {
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "unknown or revoked token")
        }
        return s
    }

    /// The org of the path, once the token is known to be for it (double scope).
    func org(_ req: Request, _ ctx: BasicRequestContext) throws -> (String, TokenScope) {
        let s = try scope(req)
        guard let org = ctx.parameters.get("org") else { throw HTTPError(.badRequest, message: "missing org") }
        // The same answer whether or not the org exists: nothing about other orgs leaks.
        guard s.allows(org: org) else { throw HTTPError(.forbidden, message: "this token reads only its own org's log") }
        return (org, s)
    }

    // MARK: Handlers

    /// `ok`; `degraded` (200) while writes are suspended, the entries already acknowledged
    /// safe; `failing` (503) when verification failed or writes stopped until a restart.
    func healthz() throws -> Response {
        metrics.observe(ledger)
        let writes = ledger.writeState
        if let f = health.failure {
            return Self.json(["status": "failing", "verification": f, "writes": writes.description], status: .serviceUnavailable)
        }
        switch writes {
        case .accepting: return Self.json(["status": "ok", "verified_entries": health.verified])
        case .suspended: return Self.json(["status": "degraded", "writes": writes.description, "verified_entries": health.verified])
        case .failed: return Self.json(["status": "failing", "writes": writes.description], status: .serviceUnavailable)
        }
    }

    func filter(_ req: Request) throws -> (QueryFilter, String?, [String: String]) {
        let q = req.uri.queryParameters
        var f = QueryFilter()
        var echo: [String: String] = [:]
        if let v = q.get("from") {
            guard let t = Timestamp.parse(v) else { throw HTTPError(.badRequest, message: "from: '\(v)' is not an RFC 3339 UTC time") }
            f.from = t; echo["from"] = v
        }
        if let v = q.get("to") {
            guard let t = Timestamp.parse(v) else { throw HTTPError(.badRequest, message: "to: '\(v)' is not an RFC 3339 UTC time") }
            f.to = t; echo["to"] = v
        }
        if let v = q.get("category") {
            guard let c = Category(rawValue: v) else { throw HTTPError(.badRequest, message: "category: '\(v)' is not one of \(Category.allCases.map(\.rawValue).joined(separator: ", "))") }
            f.category = c; echo["category"] = v
        }
        if let v = q.get("outcome") {
            guard let o = Outcome(rawValue: v) else { throw HTTPError(.badRequest, message: "outcome: '\(v)' is not success, failure or denied") }
            f.outcome = o; echo["outcome"] = v
        }
        if let v = q.get("action") { f.action = v; echo["action"] = v }
        if let v = q.get("actor") { f.actor = v; echo["actor"] = v }
        let text = q.get("q").flatMap { $0.isEmpty ? nil : $0 }
        if let text { echo["q"] = text }
        return (f, text, echo)
    }

    func cursor(_ req: Request) throws -> UInt64? {
        guard let c = req.uri.queryParameters.get("cursor") else { return nil }
        guard let v = UInt64(c) else { throw HTTPError(.badRequest, message: "cursor: not a cursor returned by this endpoint") }
        return v
    }

    func list(_ req: Request, _ ctx: BasicRequestContext) throws -> Response {
        let (org, _) = try org(req, ctx)
        let (f, text, _) = try filter(req)
        let q = req.uri.queryParameters
        let limit = min(1000, max(1, Int(q.get("limit") ?? "100") ?? 100))
        let oldestFirst = q.get("order") == "asc"
        let (entries, next) = try ledger.search(org: org, filter: f, text: text, newestFirst: !oldestFirst, limit: limit, cursor: try cursor(req))
        var body = "{\"org\":" + Self.quote(org) + ",\"entries\":["
        for (i, e) in entries.enumerated() {
            if i > 0 { body += "," }
            body += Self.entryJSON(e)
        }
        body += "],\"next_cursor\":" + (next.map { "\"\($0)\"" } ?? "null")
        body += ",\"archived\":" + Self.archivedJSON(ledger.archivedRanges(org: org, filter: f, newestFirst: !oldestFirst, cursor: try cursor(req))) + "}"
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    func entryOfOrg(_ org: String, _ seqText: String?) throws -> StoredEntry {
        let seq = try Self.uint(seqText, "seq")
        // An entry of another org, and one that does not exist, get the same 404. An archived
        // entry is named as archived whatever its org (its content, org included, is not read).
        do {
            guard seq < ledger.size else { throw StoreError(.notFound, "") }
            let e = try ledger.entry(seq: seq)
            guard e.org == org else { throw StoreError(.notFound, "") }
            return e
        } catch let e as StoreError where e.code == .archived {
            throw HTTPError(.notFound, message: "entry \(seq) is in the archive tier (\(e.message)); an operator can restore it with `auditctl archive restore`")
        } catch {
            throw HTTPError(.notFound, message: "no entry \(seq) in this org's log")
        }
    }

    func one(_ req: Request, _ ctx: BasicRequestContext) throws -> Response {
        let (org, _) = try org(req, ctx)
        let e = try entryOfOrg(org, ctx.parameters.get("seq"))
        var body = String(Self.entryJSON(e).dropLast())
        if let cp = ledger.latestCheckpoint, e.seq < cp.checkpoint.size {
            let proof = try ledger.inclusionProof(seq: e.seq, size: cp.checkpoint.size)
            body += ",\"link\":\"\(e.link.bytes.hex)\",\"tree_size\":\(cp.checkpoint.size),\"proof\":[" + proof.map { "\"\($0.hex)\"" }.joined(separator: ",") + "],\"checkpoint\":" + Self.quote(cp.note) + "}"
        } else {
            body += ",\"link\":\"\(e.link.bytes.hex)\",\"proof\":null,\"checkpoint_pending\":true}"
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    func inclusion(_ req: Request, _ ctx: BasicRequestContext) throws -> Response {
        let (org, _) = try org(req, ctx)
        let q = req.uri.queryParameters
        let e = try entryOfOrg(org, q.get("seq"))
        let latest = ledger.latestCheckpoint?.checkpoint.size ?? 0
        let size = try q.get("size").map { try Self.uint($0, "size") } ?? latest
        guard e.seq < size, size <= latest else { throw HTTPError(.badRequest, message: "size must be above the entry's seq and at most \(latest) (the latest checkpoint)") }
        return Self.json(["leaf_index": e.seq, "tree_size": size, "leaf_hash": e.hash.hex, "root": try ledger.tree.root(at: size).hex,
                          "proof": try ledger.inclusionProof(seq: e.seq, size: size).map(\.hex)])
    }

    func export(_ req: Request, _ ctx: BasicRequestContext) throws -> Response {
        let (org, scope) = try org(req, ctx)
        let (f, text, echo) = try filter(req)
        let format = req.uri.queryParameters.get("format") ?? "ndjson"
        guard format == "ndjson" || format == "csv" else { throw HTTPError(.badRequest, message: "format must be ndjson or csv") }
        // Exports are audited, in the exported org's own log, before a byte leaves.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let meta = echo.isEmpty ? "" : "," + echo.sorted { $0.key < $1.key }.map { "\"filter.\($0.key)\":" + Self.quote($0.value) }.joined(separator: ",")
        let event = "{\"org\":\(Self.quote(org)),\"category\":\"privacy\",\"action\":\"audit_log.exported\",\"actor\":{\"type\":\"\(scope.org == nil ? "service" : "human")\",\"id\":\"token:\(scope.id)\"},\"target\":{\"type\":\"audit_log\",\"id\":\(Self.quote(org))},\"outcome\":\"success\",\"source\":{\"service\":\"auditd-read-port\"},\"occurred_at\":\"\(Timestamp.format(now))\",\"metadata\":{\"format\":\"\(format)\"\(meta)}}"
        let prepared = try Entry.prepare(json: Array(event.utf8), receivedAt: now, writer: Writer(uid: getuid(), gid: getgid(), via: "auditd"))
        _ = try ledger.appendAndWait([prepared])
        try ledger.checkpointNow()
        guard let cp = ledger.latestCheckpoint else { throw HTTPError(.serviceUnavailable, message: "no checkpoint yet") }
        metrics.exports.increment()
        let size = cp.checkpoint.size
        let archived = ledger.archivedRanges(org: org, filter: f, newestFirst: false, cursor: nil)
        let filtered = !echo.isEmpty || !archived.isEmpty
        let ledger = self.ledger
        var echoWithArchive = echo
        if !archived.isEmpty { echoWithArchive["archived_bundles"] = archived.map(\.bundle).joined(separator: " ") }
        let headerLine = ExportFormat.header(org: org, origin: ledger.origin, verifier: ledger.verifier, checkpoint: cp, filtered: filtered, filter: echoWithArchive)
        let body = ResponseBody { writer in
            var count = 0
            if format == "ndjson" {
                try await writer.write(ByteBuffer(string: headerLine + "\n"))
            } else {
                try await writer.write(ByteBuffer(string: ExportFormat.csvColumns + "\n" + "header,,,,,,,,,,," + ExportFormat.csv(headerLine) + "\n"))
            }
            var cursor: UInt64? = nil
            repeat {
                let (page, next) = try ledger.search(org: org, filter: f, text: text, newestFirst: false, limit: 500, cursor: cursor)
                var chunk = ""
                for e in page where e.seq < size {
                    let proof = try ledger.inclusionProof(seq: e.seq, size: size)
                    if format == "ndjson" {
                        chunk += ExportFormat.entry(e, proof: proof) + "\n"
                    } else {
                        let v = try? Entry.decodeStored(e.content)
                        let cols = [
                            "entry", String(e.seq), String(e.link.orgSeq), v?["received_at"]?.stringValue ?? "", v?["category"]?.stringValue ?? "",
                            v?["action"]?.stringValue ?? "", (v?["actor"]?["type"]?.stringValue ?? "") + ":" + (v?["actor"]?["id"]?.stringValue ?? ""),
                            v?["outcome"]?.stringValue ?? "", e.hash.hex, e.link.bytes.hex, proof.map(\.hex).joined(separator: " "),
                            String(decoding: e.content, as: UTF8.self),
                        ]
                        chunk += cols.map(ExportFormat.csv).joined(separator: ",") + "\n"
                    }
                    count += 1
                }
                if !chunk.isEmpty { try await writer.write(ByteBuffer(string: chunk)) }
                cursor = next
                if page.last.map({ $0.seq >= size }) == true { break }
            } while cursor != nil
            let trailer = ExportFormat.trailer(count: count)
            try await writer.write(ByteBuffer(string: format == "ndjson" ? trailer + "\n" : "trailer,,,,,,,,,,," + ExportFormat.csv(trailer) + "\n"))
            try await writer.finish(nil)
        }
        let type = format == "ndjson" ? "application/x-ndjson" : "text/csv"
        return Response(status: .ok, headers: [.contentType: type, .contentDisposition: "attachment; filename=\"\(org)-audit-\(size).\(format)\""], body: body)
    }

    // MARK: Helpers

    static func uint(_ s: String?, _ name: String) throws -> UInt64 {
        guard let s, let v = UInt64(s) else { throw HTTPError(.badRequest, message: "\(name) must be a non-negative integer") }
        return v
    }

    static func quote(_ s: String) -> String { CanonicalJSON.quoted(s) }

    static func entryJSON(_ e: StoredEntry) -> String {
        "{\"seq\":\(e.seq),\"org_seq\":\(e.link.orgSeq),\"hash\":\"\(e.hash.hex)\",\"entry\":" + String(decoding: e.content, as: UTF8.self) + "}"
    }

    /// Where the rest of an org's entries are: bundles to restore (or purged, with tombstones).
    static func archivedJSON(_ ranges: [ArchivedRange]) -> String {
        "[" + ranges.map {
            "{\"bundle\":\(quote($0.bundle)),\"first_seq\":\($0.firstSeq),\"end_seq\":\($0.endSeq),\"entries\":\($0.entries),\"purged\":\($0.purged)}"
        }.joined(separator: ",") + "]"
    }

    static func text(_ s: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: s)))
    }

    static func json(_ obj: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        let d = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: d)))
    }
}

/// Every request that would change or remove something is refused: the log is append-only,
/// and entries arrive only through the ingest socket.
struct AppendOnlyMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get || request.method == .head else {
            return Response(status: .methodNotAllowed, headers: [.allow: "GET, HEAD", .contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: "{\"error\":\"the audit log is append-only: nothing can be changed or deleted through the read port\"}")))
        }
        return try await next(request, context)
    }
}

/// What the background verifier last found, for `/healthz`.
final class HealthState: @unchecked Sendable {
    private let lock = NSLock()
    private var _failure: String?
    private var _verified: UInt64 = 0
    var failure: String? { lock.withLock { _failure } }
    var verified: UInt64 { lock.withLock { _verified } }
    func fail(_ m: String) { lock.withLock { _failure = m } }
    func progress(_ n: UInt64) { lock.withLock { _verified = n } }
}
