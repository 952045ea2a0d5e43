import AuditAccess
import AuditBase
import AuditEntries
import AuditExport
import AuditIndex
import ChainIndex
import Foundation
import Hummingbird
import LogProofs
import NIOCore
import TimeStamping

/// `GET /v1/orgs/:org/export` (format-spec.md §9.3): the org's entries as NDJSON or CSV with
/// their proofs, after the export itself has been written to the org's log.
extension ReadPort {
    /// Pages are read on the export pool, so exports never hold up other readers.
    static let exportPage = 500

    func export(_ req: Request, _ ctx: OrgContext) async throws -> Response {
        let org = ctx.org
        let scope = ctx.scope
        let ledger = self.ledger
        let p = try QueryParameters(req, org: org, personal: ledger.personal)
        let format = req.uri.queryParameters.get("format") ?? "ndjson"
        guard format == "ndjson" || format == "csv" else {
            throw HTTPError(.badRequest, message: "format must be ndjson or csv")
        }
        // An operator may name any org: one that has no entries is not there to export, and
        // must not gain an entry by being asked for.
        if scope.org == nil, !ledger.holds(org: org) {
            throw HTTPError(.notFound, message: "org \(org) has no entries in this log")
        }
        // HEAD describes the export without running it: an export writes its own audit entry
        // and signs a checkpoint, which a HEAD must never do.
        if req.method == .head {
            return Response(
                status: .ok, headers: [.contentType: format == "ndjson" ? "application/x-ndjson" : "text/csv"])
        }
        // An export is recorded in the org's log before a byte leaves: here, or by the primary
        // when this is a read replica (which then serves it from its own copy).
        var consistencyFrom: UInt64?
        if let v = req.uri.queryParameters.get("consistency_from") {
            guard let n = UInt64(v), n <= ledger.size else {
                throw HTTPError(
                    .badRequest,
                    message: "consistency_from: '\(v.prefix(40))' is not a tree size of this log (0 to \(ledger.size))")
            }
            consistencyFrom = n
        }
        let (anchor, cp) =
            ledger.isFollower
            ? try await recordedByPrimary(req, org: org)
            : try await recordExport(p, org: org, scope: scope, format: format)
        metrics.exports.increment()
        let size = cp.checkpoint.size
        let produce = try await exportProducer(
            org: org, p: p, format: format, anchor: anchor, cp: cp, consistencyFrom: consistencyFrom)
        let body = ResponseBody { writer in
            try await produce { try await writer.write(ByteBuffer(string: $0)) }
            try await writer.finish(nil)
        }
        let type = format == "ndjson" ? "application/x-ndjson" : "text/csv"
        return Response(
            status: .ok,
            headers: [
                .contentType: type, .contentDisposition: "attachment; filename=\"\(org)-audit-\(size).\(format)\"",
            ], body: body)
    }

    /// The lines of a recorded export (ending at `anchor`, proven in `cp`), handed to `emit`
    /// a page at a time: the header, the pages, the trailer.
    func exportProducer(
        org: String, p: QueryParameters, format: String, anchor: UInt64, cp: SignedCheckpoint, consistencyFrom: UInt64?
    ) async throws -> @Sendable ((String) async throws -> Void) async throws -> Void {
        let ledger = self.ledger
        let logger = self.logger
        let pool = exports
        let size = cp.checkpoint.size
        var consistency: (from: UInt64, proof: [Hash])?
        if let from = consistencyFrom {
            consistency = (
                from, try await Self.offload(pool, logger: logger) { try ledger.consistencyProof(old: from, new: size) }
            )
        }
        var archived = ledger.archivedRanges(org: org, filter: p.filter, newestFirst: false, cursor: nil)
        if let from = p.filter.from,
            let before = ledger.archivedRanges(org: org, filter: QueryFilter(to: from), newestFirst: true, cursor: nil)
                .first,
            !archived.contains(where: { $0.bundle == before.bundle })
        {
            archived.insert(before, at: 0)
        }
        var stated = p.echo
        if p.text != nil { stated["q"] = p.text }
        let headerLine = ExportFormat.header(
            org: org, origin: ledger.origin, verifier: ledger.verifier, checkpoint: cp, filter: stated,
            archivedBundles: archived, consistency: consistency)
        let plan = ExportPlan(org: org, filter: p.filter, text: p.text, anchor: anchor, csv: format == "csv")
        let journal = self.timestamps
        return { emit in
            try await emit(
                format == "ndjson"
                    ? headerLine + "\n"
                    : ExportFormat.csvColumns + "\n" + ExportFormat.csvMeta("header", headerLine) + "\n")
            var state = ExportPlan.State()
            while !state.done {
                let before = state
                let (chunk, after): (String, ExportPlan.State) = try await Self.offload(pool, logger: logger) {
                    var s = before
                    let chunk = try plan.next(&s, ledger: ledger, page: Self.exportPage)
                    return (chunk, s)
                }
                state = after
                if !chunk.isEmpty { try await emit(chunk) }
            }
            let last = state
            let (gap, erasures, stamps) = try await Self.offload(pool, logger: logger) {
                (
                    try plan.finalGap(last, ledger: ledger), try plan.erasureRecords(last, ledger: ledger),
                    try Self.stamps(journal, after: last.firstSeq, size: size, ledger: ledger)
                )
            }
            let trailer = ExportFormat.trailer(
                count: state.entries, context: state.context, gap: gap, erasures: erasures, timestamps: stamps)
            try await emit(format == "ndjson" ? trailer + "\n" : ExportFormat.csvMeta("trailer", trailer) + "\n")
        }
    }

    /// The most time-stamp tokens one export carries: spread evenly over its range, the newest
    /// always among them.
    static let maxStamps = 256

    /// The tokens over checkpoints that bound the export's entries (sizes above its first
    /// entry, up to its checkpoint's), each with its consistency proof to the checkpoint.
    static func stamps(
        _ journal: TimeStampJournal?, after first: UInt64?, size: UInt64, ledger: Ledger
    ) throws -> [(stamp: StampedCheckpoint, consistency: [Hash])] {
        guard let journal, let first, first < size else { return [] }
        // A replica's log grows from the bucket: its index follows its entries.
        if ledger.isFollower { try TimeStampRecords.catchUp(journal, ledger: ledger) }
        return try journal.stamps(sizes: (first + 1)...size, limit: maxStamps).map {
            ($0, try ledger.consistencyProof(old: $0.size, new: size))
        }
    }

    /// Records an export in the org's log (its own audit entry, with a checkpoint signed at
    /// exactly its size, published and cosigned as far as witnesses answer): the entry and
    /// checkpoint the export ends at.
    func recordExport(
        _ p: QueryParameters, org: String, scope: TokenScope, format: String
    ) async throws -> (
        UInt64, SignedCheckpoint
    ) {
        let ledger = self.ledger
        let logger = self.logger
        try exportLimit.admit(token: scope.id)
        // Exports are audited, in the exported org's own log, before a byte leaves. The
        // search text is never stored (design §2): only that there was one.
        let now = ReceivedAt.now()
        var meta = p.echo.map { (key: "filter.\($0.key)", value: Self.quote($0.value)) }
        if p.text != nil { meta.append((key: "filter.text_search", value: "true")) }
        let metaJSON = meta.sorted { $0.key < $1.key }.map { ",\"\($0.key)\":\($0.value)" }.joined()
        let event =
            "{\"org\":\(Self.quote(org)),\"category\":\"privacy\",\"action\":\"audit_log.exported\",\"actor\":{\"type\":\"\(scope.org == nil ? "service" : "human")\",\"id\":\"token:\(scope.id)\"},\"target\":{\"type\":\"audit_log\",\"id\":\(Self.quote(org))},\"outcome\":\"success\",\"source\":{\"service\":\"auditd-read-port\"},\"occurred_at\":\"\(Timestamp.format(now))\",\"metadata\":{\"format\":\"\(format)\"\(metaJSON)}}"
        let prepared: PreparedEntry
        do {
            prepared = try Entry.prepare(
                json: Array(event.utf8), receivedAt: now, writer: Writer(uid: getuid(), gid: getgid(), via: "auditd"),
                keys: ledger.subjectKeys)
        } catch {
            throw HTTPError(.badRequest, message: "cannot record this export: \(error)")
        }
        // The entry the export ends at: a checkpoint is signed at exactly its size, so the
        // export's last leaf is its own audit entry and nothing of the org can follow it.
        let (anchor, signed): (Receipt, SignedCheckpoint) = try await Self.offload(exports, logger: logger) {
            try ledger.appendAnchored(prepared)
        }
        var cp = signed
        // Published only once the bucket holds every entry it covers (with replication on).
        do { try await publication.backed(cp.checkpoint.size) } catch {
            throw HTTPError(.serviceUnavailable, message: "the export's checkpoint cannot be handed out yet: \(error)")
        }
        // With witnesses, the export's checkpoint carries their cosignatures (as many as
        // answer: verify-export --witness --quorum decides whether that is enough).
        if let w = witnessing { cp = await w.cosign(cp, logger: logger).0 }
        return (anchor.seq, cp)
    }

    /// `GET /v1/orgs/:org/export/anchor` (format-spec.md §9.3): records an export as `export`
    /// does and answers with the entry and checkpoint it ends at, for a read replica that
    /// serves the export itself (the same parameters and token as the export).
    func exportAnchor(_ req: Request, _ ctx: OrgContext) async throws -> Response {
        let p = try QueryParameters(req, org: ctx.org, personal: ledger.personal)
        let format = req.uri.queryParameters.get("format") ?? "ndjson"
        guard format == "ndjson" || format == "csv" else {
            throw HTTPError(.badRequest, message: "format must be ndjson or csv")
        }
        guard !ledger.isFollower else {
            throw HTTPError(.serviceUnavailable, message: "this is a read replica: exports are recorded by the primary")
        }
        if ctx.scope.org == nil, !ledger.holds(org: ctx.org) {
            throw HTTPError(.notFound, message: "org \(ctx.org) has no entries in this log")
        }
        let (anchor, cp) = try await recordExport(p, org: ctx.org, scope: ctx.scope, format: format)
        return Self.json(["anchor": anchor, "checkpoint": cp.note])
    }
}
