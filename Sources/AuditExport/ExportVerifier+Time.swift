import AuditBase
import Foundation
import LogProofs
import TimeStamping

/// A time bound an export carries (format-spec.md §8.7): an RFC 3161 token over an earlier
/// checkpoint of the log, consistent with the export's.
public struct TimeBound: Sendable, Equatable {
    /// The stamped checkpoint's size: entries below it existed no later than `time`.
    public var size: UInt64
    /// The token's genTime (ms since 1970) when checked; else the time the trailer states.
    public var time: Int64
    /// The authority's URL, as the trailer states it.
    public var authority: String
    /// The subject of the certificate that signed the token (empty when not checked).
    public var signer: String
    /// Whether the token was checked against a trust file (only then does `time` prove anything).
    public var checked: Bool
}

extension ExportVerifier {
    /// The most tokens a trailer may carry.
    static let maxStamps = 4096

    /// Checks the trailer's `timestamps`: each token's checkpoint (`origin`, its size and root)
    /// consistent with the export's (`size`, `root`), and, with `trust`, the token's signature
    /// and imprint over that checkpoint, and its time as stated. Absent means none.
    static func checkTimestamps(
        _ value: Any?, origin: String, size: UInt64, root: Hash, trust: TimeStampTrust?
    ) -> Result<[TimeBound], ExportPersonalFailure> {
        func bad(_ m: String) -> Result<[TimeBound], ExportPersonalFailure> {
            .failure(ExportPersonalFailure(message: "trailer: timestamps: " + m))
        }
        guard let value else { return .success([]) }
        guard let list = value as? [[String: Any]], list.count <= maxStamps else {
            return bad("not a list of at most \(maxStamps) objects")
        }
        var out: [TimeBound] = []
        for (i, t) in list.enumerated() {
            guard let n = t["tree_size"] as? Int, let ts = UInt64(exactly: n), ts >= 1, ts <= size,
                let r64 = t["root_hash"] as? String, let rb = Data(base64Encoded: r64), let r = Hash(bytes: Array(rb)),
                let authority = t["authority"] as? String, let stated = (t["time"] as? String).flatMap(Timestamp.parse),
                let tok64 = t["token"] as? String, tok64.utf8.count <= 96 << 10,
                let token = Data(base64Encoded: tok64),
                let hexes = t["consistency"] as? [String], hexes.count <= 64
            else {
                return bad(
                    "token \(i + 1) needs tree_size (1 to \(size)), root_hash, authority, time, token (base64) and consistency"
                )
            }
            let proof = hexes.compactMap { Hash(hex: $0) }
            guard proof.count == hexes.count,
                Merkle.verifyConsistency(old: ts, new: size, oldRoot: r, newRoot: root, proof: proof)
            else {
                return bad(
                    "token \(i + 1) stamps a tree of \(ts) entries that is not consistent with the export's checkpoint: it is not this log's history"
                )
            }
            guard let trust else {
                out.append(TimeBound(size: ts, time: stated, authority: authority, signer: "", checked: false))
                continue
            }
            let digest = TimeStampImprint.digest(Checkpoint(origin: origin, size: ts, root: r))
            let checked: TimeStampToken
            do { checked = try TimeStampToken.verify(Array(token), digest: digest, trust: trust) } catch {
                return bad("token \(i + 1) (tree of \(ts) entries, by \(authority)): \(error)")
            }
            guard checked.time == stated else {
                return bad(
                    "token \(i + 1) says \(Timestamp.format(checked.time)), the trailer \(Timestamp.format(stated)): the trailer was edited"
                )
            }
            out.append(
                TimeBound(size: ts, time: checked.time, authority: authority, signer: checked.signer, checked: true))
        }
        return .success(out.sorted { ($0.size, $0.time) < ($1.size, $1.time) })
    }
}
