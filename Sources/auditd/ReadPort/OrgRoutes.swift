import AuditBase
import AuditEntries
import AuditIndex
import ChainIndex
import Hummingbird
import NIOCore
import PersonalStore
import SegmentStore

/// The routes under `/v1/orgs/:org` that read: a page of entries, one entry with its proof,
/// an inclusion proof. Each takes an `OrgContext`, so the org is one the token may read.
extension ReadPort {
    /// How long one page may spend examining candidates (a free-text search or a rare filter
    /// over a long history) before it returns what it found and the cursor to go on from.
    static let pageTimeLimit = Duration.milliseconds(80)

    func list(_ req: Request, _ ctx: OrgContext) async throws -> Response {
        let org = ctx.org
        let ledger = self.ledger
        let p = try QueryParameters(req, org: org, personal: ledger.personal)
        let body: String = try await query {
            let (entries, next) = try ledger.search(
                org: org, filter: p.filter, text: p.text, newestFirst: p.newestFirst, limit: p.limit,
                cursor: p.cursor, timeLimit: Self.pageTimeLimit)
            var body = "{\"org\":" + Self.quote(org) + ",\"entries\":["
            // A withheld entry matches no filter but time: a match would say what it holds.
            let stubs = p.text == nil && p.filter.isTimeRangeOnly
            var first = true
            for e in entries where stubs || ledger.withholding(e.seq) == nil {
                if !first { body += "," }
                first = false
                body += Self.entryJSON(e, ledger)
            }
            body += "],\"next_cursor\":" + (next.map { "\"\($0)\"" } ?? "null")
            body +=
                ",\"archived\":"
                + Self.archivedJSON(
                    ledger.archivedRanges(org: org, filter: p.filter, newestFirst: p.newestFirst, cursor: p.cursor))
                + "}"
            return body
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// Entry `seq` if it is `org`'s. An entry of another org and one that does not exist get
    /// the same 404; an archived entry is named as archived whatever its org (its content,
    /// org included, is not read); a damaged one is named as damaged (by `query`).
    static func entryOfOrg(_ ledger: Ledger, _ org: String, _ seq: UInt64) throws -> StoredEntry {
        let notFound = HTTPError(.notFound, message: "no entry \(seq) in this org's log")
        guard seq < ledger.size else { throw notFound }
        do {
            let e = try ledger.entry(seq: seq)
            guard e.org == org else { throw notFound }
            return e
        } catch  where (error as? AuditError)?.code == .retired {
            // Said only when this org has entries in that archived segment: another org's
            // archived seq gets the same answer as one that does not exist.
            guard let r = ledger.archivedRanges(org: org).first(where: { seq >= $0.firstSeq && seq < $0.endSeq }) else {
                throw notFound
            }
            throw HTTPError(
                .notFound,
                message:
                    "entry \(seq), if it is this org's, is in the archive tier (bundle \(r.bundle)\(r.purged ? ", purged at the end of its retention" : "")); an operator can restore it with `auditctl archive restore`"
            )
        } catch let e as AuditError where e.code == .notFound {
            throw notFound
        }
    }

    func one(_ ctx: OrgContext) async throws -> Response {
        let seq = try QueryParameters.uint(ctx.parameters.get("seq"), "seq")
        let org = ctx.org
        let ledger = self.ledger
        let published = publication.latest
        let body: String = try await query {
            let e = try Self.entryOfOrg(ledger, org, seq)
            var body = String(Self.entryJSON(e, ledger).dropLast())
            // An erasure record that withholds entries lists them (its metadata signs their digest).
            let withholds = ledger.personal.withheld.entries(of: e.seq)
            if !withholds.isEmpty {
                body += ",\"withholds\":[" + withholds.map(String.init).joined(separator: ",") + "]"
            }
            if let cp = published, e.seq < cp.checkpoint.size {
                let proof = try ledger.inclusionProof(seq: e.seq, size: cp.checkpoint.size)
                body +=
                    ",\"link\":\"\(e.link.bytes.hex)\",\"tree_size\":\(cp.checkpoint.size),\"proof\":["
                    + proof.map { "\"\($0.hex)\"" }.joined(separator: ",") + "],\"checkpoint\":" + Self.quote(cp.note)
                    + "}"
            } else {
                body += ",\"link\":\"\(e.link.bytes.hex)\",\"proof\":null,\"checkpoint_pending\":true}"
            }
            return body
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    func inclusion(_ req: Request, _ ctx: OrgContext) async throws -> Response {
        let q = req.uri.queryParameters
        let seq = try QueryParameters.uint(q.get("seq"), "seq")
        let latest = publication.latest?.checkpoint.size ?? 0
        let size = try q.get("size").map { try QueryParameters.uint($0, "size") } ?? latest
        let org = ctx.org
        let ledger = self.ledger
        let body: [String: any Sendable] = try await query {
            let e = try Self.entryOfOrg(ledger, org, seq)
            guard e.seq < size, size <= latest else {
                throw HTTPError(
                    .badRequest,
                    message: "size must be above the entry's seq and at most \(latest) (the latest checkpoint)")
            }
            return [
                "leaf_index": e.seq, "tree_size": size, "leaf_hash": e.hash.hex,
                "root": try ledger.root(at: size).hex,
                "proof": try ledger.inclusionProof(seq: e.seq, size: size).map(\.hex),
            ]
        }
        return Self.json(body)
    }

    /// An entry as the read port and the feed show it: its signed bytes, and beside them
    /// (`personal`) what its commitments stand for, erased or withheld (format-spec.md §5.4.4);
    /// or, for an entry an erasure withholds, no content but the record that withholds it.
    static func entryJSON(_ e: StoredEntry, _ ledger: Ledger) -> String {
        if let w = ledger.withholding(e.seq) {
            return "{\"seq\":\(e.seq),\"org_seq\":\(e.link.orgSeq),\"hash\":\"\(e.hash.hex)\",\"withheld\":"
                + Disclosed.recordJSON(w) + "}"
        }
        return "{\"seq\":\(e.seq),\"org_seq\":\(e.link.orgSeq),\"hash\":\"\(e.hash.hex)\",\"entry\":"
            + String(decoding: e.content, as: UTF8.self)
            + (Disclosed.json(ledger.disclose(e)).map { ",\"personal\":" + $0 } ?? "") + "}"
    }

    /// Where the rest of an org's entries are: bundles to restore (or purged, with tombstones).
    static func archivedJSON(_ ranges: [ArchivedRange]) -> String {
        "["
            + ranges.map {
                "{\"bundle\":\(quote($0.bundle)),\"first_seq\":\($0.firstSeq),\"end_seq\":\($0.endSeq),\"entries\":\($0.entries),\"purged\":\($0.purged)}"
            }.joined(separator: ",") + "]"
    }
}
