import ChainIndex
import Foundation
import Hummingbird
import LogProofs

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// An export on a read replica: the primary records it in the org's log
/// (`GET /v1/orgs/:org/export/anchor`, with the reader's own token and parameters), and the
/// replica serves it from its own copy once that copy holds the export's own audit entry and
/// the checkpoint the primary signed at it is the replica's own tree's.
extension ReadPort {
    /// How long a replica waits for the export's entry to arrive from the bucket.
    static let replicaExportWait: Duration = .seconds(30)
    /// The most a primary's answer may hold.
    static let anchorAnswerLimit = 64 << 10

    func recordedByPrimary(_ req: Request, org: String) async throws -> (UInt64, SignedCheckpoint) {
        guard let primary = replicaPrimary else {
            throw HTTPError(
                .serviceUnavailable,
                message:
                    "this is a read replica: an export is first recorded in the org's log, which only the primary writes; export from the primary, or start the replica with --replica-primary set to the primary's read port"
            )
        }
        let path =
            "/v1/orgs/" + (org.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? org)
        guard let url = URL(string: primary + path + "/export/anchor" + (req.uri.query.map { "?" + $0 } ?? "")) else {
            throw HTTPError(.internalServerError, message: "replica_primary \(primary) does not make a URL")
        }
        var r = URLRequest(url: url, timeoutInterval: 30)
        if let auth = req.headers[.authorization] { r.setValue(auth, forHTTPHeaderField: "Authorization") }
        let (status, body) = try await Self.fetch(r)
        guard status == 200 else {
            let why =
                ((try? JSONSerialization.jsonObject(with: Data(body.prefix(Self.anchorAnswerLimit)))) as? [String: Any])
                .flatMap { ($0["error"] as? [String: Any])?["message"] as? String } ?? "HTTP \(status)"
            throw HTTPError(
                HTTPResponse.Status(code: status == 0 ? 502 : status),
                message: "the primary did not record the export: \(why)")
        }
        guard body.count <= Self.anchorAnswerLimit,
            let o = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
            let anchor = (o["anchor"] as? NSNumber)?.uint64Value, let note = o["checkpoint"] as? String
        else { throw HTTPError(.badGateway, message: "the primary's answer to the export is not {anchor, checkpoint}") }
        let cp: SignedCheckpoint
        do { cp = try SignedCheckpoint(note: note, verifier: ledger.verifier) } catch {
            throw HTTPError(.badGateway, message: "the primary's checkpoint for the export does not verify: \(error)")
        }
        let size = cp.checkpoint.size
        // (Not `anchor + 1`: the primary's number must not be able to overflow it.)
        guard size > 0, size - 1 == anchor else {
            throw HTTPError(
                .badGateway, message: "the primary's checkpoint (size \(size)) does not end at entry \(anchor)")
        }
        let deadline = ContinuousClock.now + Self.replicaExportWait
        while ledger.size < size {
            guard ContinuousClock.now < deadline else {
                throw HTTPError(
                    .serviceUnavailable,
                    message:
                        "the export was recorded as entry \(anchor), but this replica holds \(ledger.size) entries after \(Self.replicaExportWait): it is behind the bucket (see /healthz); try again"
                )
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let ledger = self.ledger
        let root = try await Self.offload(exports, logger: logger) { try ledger.root(at: size) }
        guard root == cp.checkpoint.root else {
            throw HTTPError(
                .badGateway,
                message:
                    "the primary signed size \(size) with a root this replica's entries do not give: they are not the same log"
            )
        }
        return (anchor, cp)
    }

    /// One bounded request: the status and body (status 0 when the primary could not be reached).
    static func fetch(_ r: URLRequest) async throws -> (Int, [UInt8]) {
        try await withCheckedThrowingContinuation { done in
            URLSession.shared.dataTask(with: r) { data, response, error in
                if let error {
                    done.resume(
                        throwing: HTTPError(
                            .badGateway,
                            message:
                                "the primary could not be reached to record the export: \(error.localizedDescription)"))
                    return
                }
                done.resume(returning: ((response as? HTTPURLResponse)?.statusCode ?? 0, Array(data ?? Data())))
            }.resume()
        }
    }
}
