import ChainIndex
import Foundation
import Hummingbird
import NIOCore

/// `GET /v1/orgs/:org/export` (format-spec.md §9.3): the org's entries as NDJSON or CSV with
/// their proofs, after the export itself has been written to the org's log.
extension ReadPort {
    /// Pages are read on the export pool, so exports never hold up other readers.
    static let exportPage = 500

    func export(_ req: Request, _ ctx: OrgContext) async throws -> Response {
        let p = try QueryParameters(req)
        let org = ctx.org, scope = ctx.scope, ledger = self.ledger, logger = self.logger, pool = exports
        let format = req.uri.queryParameters.get("format") ?? "ndjson"
        guard format == "ndjson" || format == "csv" else { throw HTTPError(.badRequest, message: "format must be ndjson or csv") }
        // An operator may name any org: one that has no entries is not there to export, and
        // must not gain an entry by being asked for.
        if scope.org == nil, !ledger.index.holds(org: org) {
            throw HTTPError(.notFound, message: "org \(org) has no entries in this log")
        }
        // Exports are audited, in the exported org's own log, before a byte leaves. The
        // search text is never stored (design §2): only that there was one.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var meta = p.echo.map { (key: "filter.\($0.key)", value: Self.quote($0.value)) }
        if p.text != nil { meta.append((key: "filter.text_search", value: "true")) }
        let metaJSON = meta.sorted { $0.key < $1.key }.map { ",\"\($0.key)\":\($0.value)" }.joined()
        let event = "{\"org\":\(Self.quote(org)),\"category\":\"privacy\",\"action\":\"audit_log.exported\",\"actor\":{\"type\":\"\(scope.org == nil ? "service" : "human")\",\"id\":\"token:\(scope.id)\"},\"target\":{\"type\":\"audit_log\",\"id\":\(Self.quote(org))},\"outcome\":\"success\",\"source\":{\"service\":\"auditd-read-port\"},\"occurred_at\":\"\(Timestamp.format(now))\",\"metadata\":{\"format\":\"\(format)\"\(metaJSON)}}"
        let prepared: PreparedEntry
        do { prepared = try Entry.prepare(json: Array(event.utf8), receivedAt: now, writer: Writer(uid: getuid(), gid: getgid(), via: "auditd")) } catch {
            throw HTTPError(.badRequest, message: "cannot record this export: \(error)")
        }
        let cp: SignedCheckpoint = try await Self.offload(pool, logger: logger) {
            _ = try ledger.appendAndWait([prepared])
            try ledger.checkpointNow()
            guard let cp = ledger.latestCheckpoint else { throw HTTPError(.serviceUnavailable, message: "no checkpoint yet") }
            return cp
        }
        metrics.exports.increment()
        let size = cp.checkpoint.size
        let archived = ledger.archivedRanges(org: org, filter: p.filter, newestFirst: false, cursor: nil)
        let filtered = !p.echo.isEmpty || p.text != nil || !archived.isEmpty
        var echo = p.echo
        if p.text != nil { echo["q"] = p.text }
        if !archived.isEmpty { echo["archived_bundles"] = archived.map(\.bundle).joined(separator: " ") }
        let headerLine = ExportFormat.header(org: org, origin: ledger.origin, verifier: ledger.verifier, checkpoint: cp, filtered: filtered, filter: echo)
        let body = ResponseBody { writer in
            var count = 0
            if format == "ndjson" {
                try await writer.write(ByteBuffer(string: headerLine + "\n"))
            } else {
                try await writer.write(ByteBuffer(string: ExportFormat.csvColumns + "\n" + "header,,,,,,,,,,," + ExportFormat.csv(headerLine) + "\n"))
            }
            var cursor: UInt64? = nil
            var done = false
            repeat {
                let from = cursor
                let (chunk, n, next, end): (String, Int, UInt64?, Bool) = try await Self.offload(pool, logger: logger) {
                    let (page, next) = try ledger.search(org: org, filter: p.filter, text: p.text, newestFirst: false, limit: Self.exportPage, cursor: from)
                    var chunk = ""
                    var n = 0
                    for e in page where e.seq < size {
                        let proof = try ledger.inclusionProof(seq: e.seq, size: size)
                        chunk += (format == "ndjson" ? ExportFormat.entry(e, proof: proof) : ExportFormat.csvRow(e, proof: proof)) + "\n"
                        n += 1
                    }
                    return (chunk, n, next, page.last.map { $0.seq >= size } ?? false)
                }
                count += n
                if !chunk.isEmpty { try await writer.write(ByteBuffer(string: chunk)) }
                cursor = next
                done = end || next == nil
            } while !done
            let trailer = ExportFormat.trailer(count: count)
            try await writer.write(ByteBuffer(string: format == "ndjson" ? trailer + "\n" : "trailer,,,,,,,,,,," + ExportFormat.csv(trailer) + "\n"))
            try await writer.finish(nil)
        }
        let type = format == "ndjson" ? "application/x-ndjson" : "text/csv"
        return Response(status: .ok, headers: [.contentType: type, .contentDisposition: "attachment; filename=\"\(org)-audit-\(size).\(format)\""], body: body)
    }
}
