import AuditAccess
import AuditBase
import AuditEntries
import ChainIndex
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import Prometheus
import SegmentStore
import TimeStamping

/// The read port (format-spec.md §9.2, openapi.yaml): HTTP/JSON, GET and HEAD only, bearer
/// tokens bound to one org (or operator scope). Routes under `/v1/orgs/:org` take an
/// `OrgContext`, which exists only once the token's org and the path's org agree, and the
/// query engine reads only that org's index: no endpoint can read, count or reveal another
/// org's entries.
///
/// Ledger reads and writes block, so they run on thread pools, never on the event loops:
/// one pool for queries and proofs, one (smaller) for exports, so that many exports never hold
/// up another reader.
struct ReadPort {
    let ledger: Ledger
    /// Which checkpoints may be shown.
    let publication: Publication
    let tokens: TokenStore
    let registry: PrometheusCollectorRegistry
    let metrics: DaemonMetrics
    let health: HealthState
    let logger: Logger
    let queries: NIOThreadPool
    let exports: NIOThreadPool
    /// The witnesses, when configured.
    var witnessing: Witnessing?
    /// The time-stamping authorities, when configured.
    var timestamper: TimeStamper?
    /// The tokens the log holds (`checkpoints/timestamps`), for exports; nil when it has none.
    var timestamps: TimeStampJournal?
    /// A read replica's progress (`auditd --replica-of`), nil for the primary.
    var replica: ReplicaState?
    /// A read replica's primary read port (`replica_primary`), which records its exports.
    var replicaPrimary: String?
    /// Exports each token may start.
    var exportLimit = ExportLimit()
    /// Reads each token may have on the query pool at once.
    var tokenGate = TokenGate()

    func router() -> Router<ReadContext> {
        let router = Router(context: ReadContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: SecurityHeadersMiddleware())
        router.add(middleware: AppendOnlyMiddleware())
        addConsole(to: router)
        router.get("/healthz") { _, _ in self.healthz() }
        router.get("/metrics") { _, _ in
            self.metrics.observe(
                self.ledger, replication: self.publication.replicator?.status, replica: self.replica)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: self.registry.emitToBuffer())))
        }
        let v1 = router.group("v1").add(middleware: TokenMiddleware(tokens: tokens))
        v1.get("checkpoint") { _, _ in
            guard let cp = self.publication.latest else {
                throw HTTPError(.notFound, message: "no checkpoint published yet")
            }
            return Self.text(cp.note)
        }
        v1.get("checkpoint/cosigned") { _, _ in
            guard let w = self.witnessing else {
                throw HTTPError(.notFound, message: "this log has no witnesses configured (auditd --witness)")
            }
            guard let cp = w.cosigned else {
                throw HTTPError(
                    .notFound,
                    message:
                        "no checkpoint has a quorum of \(w.client.quorum) cosignatures yet\(w.failing.map { ": " + $0 } ?? "")"
                )
            }
            return Self.text(cp.note)
        }
        v1.get("checkpoints/:size") { _, ctx in
            let size = try QueryParameters.uint(ctx.parameters.get("size"), "size")
            let cp = try await self.query {
                try self.publication.checkpoint(atLeast: size)
            }
            guard let cp, cp.checkpoint.size == size else {
                throw HTTPError(
                    .notFound, message: "no checkpoint was signed at size \(size); use /v1/checkpoint for the latest")
            }
            return Self.text(cp.note)
        }
        // The log's first key and the statements handing it on (format-spec.md §8.8): a reader
        // that holds the first key follows them to check checkpoints the newer keys signed.
        v1.get("key-successions") { _, _ in
            let keys = self.ledger.verifier
            return Self.json(["verifier_key": keys.original.text, "key_successions": keys.notes])
        }
        v1.get("proofs/consistency") { req, _ in try await self.consistency(req) }
        v1.get("session") { _, ctx in try self.session(ctx) }
        let operators = v1.group("operator", context: OperatorContext.self)
        operators.get("status") { _, _ in try await self.operatorStatus() }
        operators.get("tokens") { _, _ in try await self.operatorTokens() }
        let orgs = v1.group("orgs/:org", context: OrgContext.self)
        // Pages, proofs and activity take the query pool: two at a time per token. Exports have
        // their own pool and limit; a feed is long-lived and polls in short steps.
        let gate = tokenGate
        orgs.get("entries") { req, ctx in try await gate.run(ctx.scope.id) { try await self.list(req, ctx) } }
        orgs.get("entries/:seq") { _, ctx in try await gate.run(ctx.scope.id) { try await self.one(ctx) } }
        orgs.get("proofs/inclusion") { req, ctx in
            try await gate.run(ctx.scope.id) { try await self.inclusion(req, ctx) }
        }
        orgs.get("export") { req, ctx in try await self.export(req, ctx) }
        orgs.get("export/anchor") { req, ctx in try await self.exportAnchor(req, ctx) }
        orgs.get("evidence") { req, ctx in try await self.evidence(req, ctx) }
        orgs.get("feed") { req, ctx in try await self.feed(req, ctx) }
        orgs.get("activity") { req, ctx in try await gate.run(ctx.scope.id) { try await self.activity(req, ctx) } }
        return router
    }

    /// Runs blocking ledger work on the query pool, turning storage damage into an answer
    /// that says so (never "not found").
    func query<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await Self.offload(queries, logger: logger, work)
    }

    static func offload<T: Sendable>(
        _ pool: NIOThreadPool, logger: Logger, _ work: @escaping @Sendable () throws -> T
    ) async throws -> T {
        do {
            return try await pool.runIfActive(work)
        } catch let e as AuditError where e.code == .corrupt || e.code == .io {
            logger.error("read failed on damaged storage", metadata: ["error": "\(e)"])
            throw HTTPError(
                .internalServerError,
                message:
                    "the log's storage is damaged where this request reads (\(e.message)); the entries are not missing, and the operator has been told: run `auditctl verify` on the data directory"
            )
        } catch let e as AuditError where e.code == .notFound {
            throw HTTPError(.notFound, message: e.message)
        } catch let e as HTTPError {
            throw e
        } catch {
            // Never a bare 500: say what failed.
            logger.error("read failed", metadata: ["error": "\(error)"])
            throw HTTPError(.internalServerError, message: "the read failed: \(error)")
        }
    }

    func consistency(_ req: Request) async throws -> Response {
        let q = req.uri.queryParameters
        let old = try QueryParameters.uint(q.get("old"), "old")
        let latest = publication.latest?.checkpoint.size ?? 0
        let new = try q.get("new").map { try QueryParameters.uint($0, "new") } ?? latest
        guard old <= new, new <= latest else {
            throw HTTPError(.badRequest, message: "need old ≤ new ≤ \(latest) (the latest checkpoint)")
        }
        let ledger = self.ledger
        let body: [String: any Sendable] = try await query {
            [
                "old_size": old, "new_size": new, "old_root": try ledger.root(at: old).hex,
                "new_root": try ledger.root(at: new).hex,
                "proof": try ledger.consistencyProof(old: old, new: new).map(\.hex),
            ]
        }
        return Self.json(body)
    }

    // MARK: Helpers

    static func quote(_ s: String) -> String { CanonicalJSON.quoted(s) }

    static func text(_ s: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: s)))
    }

    static func json(_ obj: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        let d =
            (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data()
        return Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: d)))
    }
}
