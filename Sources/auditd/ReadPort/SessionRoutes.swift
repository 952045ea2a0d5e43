import Archive
import AuditAccess
import AuditBase
import Foundation
import Hummingbird
import NIOCore
import SegmentStore

/// What a token is (`/v1/session`), and the operator's overview (`/v1/operator/status`).
extension ReadPort {
    /// The token's scope and the log's identity: what the console needs to sign someone in.
    /// The verifier key here is what the server claims; the console pins the key it trusts.
    func session(_ ctx: ReadContext) throws -> Response {
        guard let scope = ctx.scope else {
            throw HTTPError(.unauthorized, message: "send Authorization: Bearer <token>")
        }
        var body: [String: Any] = [
            "scope": scope.org == nil ? "operator" : "org", "token_id": scope.id,
            "origin": ledger.origin, "verifier_key": ledger.verifier.text,
            // The statements handing the key on (§8.8): the console follows them from the key
            // it pinned, each checked signed by the key it replaces.
            "key_successions": ledger.verifier.notes,
        ]
        if let org = scope.org { body["org"] = org }
        if let e = scope.expiresAt { body["expires_at"] = e }
        return Self.json(body)
    }

    /// Log size, latest checkpoint, verification, segments, archive and holds at a glance.
    func operatorStatus() async throws -> Response {
        let ledger = self.ledger
        let health = self.health
        let witnessing = self.witnessing
        let published = publication.latest
        let replication = publication.replicator?.status
        let body: Data = try await query {
            let segments = ledger.segments()
            var byState: [String: Int] = [:]
            for s in segments { byState[s.state.rawValue, default: 0] += 1 }
            let archived = segments.filter { $0.state == .retired }
            let bundles = Set(archived.compactMap(\.label))
            let holds = (try? LegalHolds.load(dir: ledger.directory)) ?? []
            var cp: [String: Any] = [:]
            if let c = published {
                cp = [
                    "size": c.checkpoint.size, "root": c.checkpoint.root.hex, "note": c.note,
                    "entries_behind": ledger.size > c.checkpoint.size ? ledger.size - c.checkpoint.size : 0,
                ]
                // Its age: known when it is the newest this daemon signed (published at once).
                if c.checkpoint.size == ledger.latestCheckpoint?.checkpoint.size, let t = ledger.latestCheckpointAt {
                    cp["signed_at"] = Timestamp.format(t)
                }
            }
            var verification: [String: Any] = ["verified_entries": health.verified]
            verification["status"] = health.failure == nil ? "ok" : "failing"
            if let f = health.failure { verification["failure"] = f }
            if let t = health.verifiedAt { verification["last_pass"] = Timestamp.format(t) }
            var archive: [String: Any] = [
                "bundles": bundles.count, "newest_bundle": bundles.max().map { $0 as Any } ?? NSNull(),
            ]
            if let run = health.archiveRun {
                archive["last_run"] = Timestamp.format(run.at)
                archive["last_result"] = run.result
            }
            var out: [String: Any] = [
                "origin": ledger.origin, "verifier_key": ledger.verifier.text, "size": ledger.size,
                "writes": ledger.writeState.description, "checkpoint": cp, "verification": verification,
                "segments": [
                    "total": segments.count, "by_state": byState,
                    "hot_entries": segments.filter { $0.state != .retired }.reduce(UInt64(0)) {
                        $0 + ($1.endSeq - $1.firstSeq)
                    },
                    "archived_entries": archived.reduce(UInt64(0)) { $0 + ($1.endSeq - $1.firstSeq) },
                ],
                "archive": archive,
                "holds": holds.filter { $0.released_at == nil }.map {
                    [
                        "id": $0.id, "org": $0.org, "from": $0.from.map { $0 as Any } ?? NSNull(),
                        "to": $0.to.map { $0 as Any } ?? NSNull(), "reason": $0.reason,
                        "authority": $0.authority, "created_at": $0.created_at,
                    ] as [String: Any]
                },
            ]
            if let r = replication { out["replication"] = r.json }
            if let w = witnessing {
                out["witnesses"] =
                    [
                        "quorum": w.client.quorum, "failing": w.failing.map { $0 as Any } ?? NSNull(),
                        "cosigned_size": w.cosigned.map { $0.checkpoint.size as Any } ?? NSNull(),
                    ] as [String: Any]
            }
            return (try? JSONSerialization.data(withJSONObject: out, options: [.sortedKeys, .withoutEscapingSlashes]))
                ?? Data()
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension ReadPort {
    /// Every token of the log, never a secret nor its hash: id, scope, label, created, expiry,
    /// revocation, and its state as the read port treats it (`active`, `expired`, `revoked`, or
    /// `refused` when no audit entry backs the record). Read from the file the daemon
    /// authenticates against.
    func operatorTokens() async throws -> Response {
        let tokens = self.tokens
        let body: Data = try await query {
            let all = try TokenStore.load(path: tokens.path)
            let admitted = tokens.admittedIDs
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let list: [[String: Any]] = all.map { r in
                var o: [String: Any] = [
                    "id": r.id, "scope": r.org ?? "operator", "label": r.label, "created_at": r.created_at,
                ]
                if let e = r.expires_at { o["expires_at"] = e }
                if let v = r.revoked_at { o["revoked_at"] = v }
                o["state"] =
                    r.revoked_at != nil
                    ? "revoked" : !admitted.contains(r.id) ? "refused" : r.expired(at: now) ? "expired" : "active"
                return o
            }
            return
                (try? JSONSerialization.data(
                    withJSONObject: ["tokens": list], options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// The context of every route under `/v1/operator`: it exists only for an operator token, so
/// no route of the group can answer an org token.
struct OperatorContext: ChildRequestContext {
    var coreContext: CoreRequestContextStorage

    init(context: ReadContext) throws {
        coreContext = context.coreContext
        guard let scope = context.scope else {
            throw HTTPError(
                .unauthorized, headers: [.wwwAuthenticate: "Bearer"],
                message: "send Authorization: Bearer <token> (create one with `auditctl token create`)")
        }
        guard scope.org == nil else {
            throw HTTPError(.forbidden, message: "this needs an operator token (`auditctl token create --operator`)")
        }
    }
}
