import AuditBase
import AuditEntries
import Foundation
import LogProofs

/// A field an export shows as erased (format-spec.md §5.4.4).
public struct ErasedField: Sendable, Equatable, CustomStringConvertible {
    /// The entry.
    public var seq: UInt64
    /// The field's path.
    public var path: String
    /// The `data_subject.erased` entry that recorded the erasure.
    public var record: UInt64
    /// Who ordered it, as that signed entry says.
    public var authority: String

    /// `entry 12 actor.id: ERASED (entry 57, authority DPO)`.
    public var description: String { "entry \(seq) \(path): ERASED (entry \(record), authority \(authority))" }
}

/// An entry an export withholds (it names an erased subject in the clear, §5.4.3): its link,
/// hash and place in the org's chain are checked, its content is not shown.
public struct WithheldEntry: Sendable, Equatable, CustomStringConvertible {
    /// The entry.
    public var seq: UInt64
    /// The `data_subject.erased` entry that withholds it.
    public var record: UInt64
    /// Who ordered it, as that signed entry says.
    public var authority: String

    /// `entry 12: WITHHELD (entry 57, authority DPO)`.
    public var description: String { "entry \(seq): WITHHELD (entry \(record), authority \(authority))" }
}

/// Personal fields in exports: every commitment opened, or erased under a record the export
/// proves; anything else (a value that does not open, a field withheld without a record, a
/// record that is not the log's) fails the export.
extension ExportVerifier {
    /// An erasure a line claims, checked against the trailer's records.
    struct ErasureClaim {
        var seq: UInt64
        var path: String
        var tag: SubjectTag
        var record: UInt64
    }

    /// A withheld line's claim, checked against the trailer's records.
    struct WithheldClaim {
        var seq: UInt64
        var record: UInt64
    }

    /// Reads a withheld line's `withheld` member: `{"authority":…,"entry":N}`, N after it.
    static func withheldClaim(
        seq: UInt64, _ value: Any?, personal: Any?
    ) -> Result<WithheldClaim, ExportPersonalFailure> {
        guard personal == nil, let w = value as? [String: Any], let n = w["entry"] as? Int,
            let record = UInt64(exactly: n), w["authority"] is String
        else {
            return .failure(
                ExportPersonalFailure(
                    message: "entry \(seq): withheld must be {\"authority\",\"entry\"} and stand alone (no personal)"))
        }
        guard record > seq else {
            return .failure(
                ExportPersonalFailure(
                    message: "entry \(seq) claims to be withheld by entry \(record), which is not after it"))
        }
        return .success(WithheldClaim(seq: seq, record: record))
    }

    /// Checks line `seq`'s `personal` member against its content's commitments.
    static func checkPersonal(
        seq: UInt64, content: [UInt8], personal: Any?
    ) -> Result<(opened: Int, claims: [ErasureClaim]), ExportPersonalFailure> {
        func fail(_ m: String) -> Result<(opened: Int, claims: [ErasureClaim]), ExportPersonalFailure> {
            .failure(ExportPersonalFailure(message: "entry \(seq): \(m)"))
        }
        let committed =
            Personal.mayHoldCommitments(content)
            ? ((try? Entry.decodeStored(content)).map(Personal.commitments(in:)) ?? []) : []
        let shown = personal as? [String: Any] ?? [:]
        if personal != nil, !(personal is [String: Any]) { return fail("personal is not an object") }
        for path in shown.keys where !committed.contains(where: { $0.path == path }) {
            return fail("personal claims a value for \(path), which the signed entry does not commit to")
        }
        guard let groups = Personal.groups(committed) else {
            return fail(
                "its committed fields are not grouped as format-spec §5.4.1 says (a subject's fields under two commitments, or a field without its subject's)"
            )
        }
        var opened = 0
        var claims: [ErasureClaim] = []
        for g in groups {
            var shownFields: [[String: Any]] = []
            for path in g.paths {
                guard let f = shown[path] as? [String: Any] else {
                    return fail(
                        "\(path) is committed, but the export neither opens it nor names its erasure record (withheld)")
                }
                shownFields.append(f)
            }
            let paths = g.paths.joined(separator: ", ")
            let nonces = shownFields.map { $0["nonce"] as? String }
            let values = shownFields.compactMap { $0["value"] as? String }
            let records = shownFields.map {
                (($0["erased"] as? [String: Any])?["entry"] as? Int).flatMap(UInt64.init(exactly:))
            }
            if let first = nonces.first ?? nil, nonces.allSatisfy({ $0 == first }), values.count == g.paths.count {
                // One nonce opens the group: each field shows it with its value.
                guard let nonce = [UInt8](hex: first), g.opens(nonce: nonce, values: values) else {
                    return fail("the values shown for \(paths) do not open their commitment (edited)")
                }
                opened += g.paths.count
            } else if let record = records.first ?? nil, records.allSatisfy({ $0 == record }) {
                guard record > seq else {
                    return fail("\(paths) claim erasure by entry \(record), which is not after it")
                }
                for path in g.paths { claims.append(ErasureClaim(seq: seq, path: path, tag: g.tag, record: record)) }
            } else {
                let why = shownFields.compactMap { $0["withheld"] }.first ?? "withheld"
                return fail(
                    "\(paths) (one subject's, under one commitment) are neither all opened with one nonce nor all erased by one entry: \(why)"
                )
            }
        }
        return .success((opened, claims))
    }

    /// Checks the trailer's `erasures` against the claims: each record named is authentic (its
    /// inclusion proof in the export's checkpoint), the org's own `data_subject.erased`, of the
    /// claimed subject tag. Returns the erased fields, or why not.
    static func checkErasures(
        _ value: Any?, claims: [ErasureClaim], withheld: [WithheldClaim], org: String, size: UInt64, root: Hash
    ) -> Result<([ErasedField], [WithheldEntry]), ExportPersonalFailure> {
        func fail(_ m: String) -> Result<([ErasedField], [WithheldEntry]), ExportPersonalFailure> {
            .failure(ExportPersonalFailure(message: "trailer: \(m)"))
        }
        guard !claims.isEmpty || !withheld.isEmpty || value != nil else { return .success(([], [])) }
        guard let list = value as? [[String: Any]] else {
            return fail("entries show erased fields, but the trailer carries no erasure records")
        }
        var records: [UInt64: (tag: String, authority: String, withholds: Set<UInt64>)] = [:]
        for o in list {
            guard let n = o["seq"] as? Int, let seq = UInt64(exactly: n), let content = o["content"] as? String,
                let linkHex = o["link"] as? String, let link = [UInt8](hex: linkHex), let l = try? Link(bytes: link),
                let proofHex = o["proof"] as? [String]
            else { return fail("an erasure record lacks seq, content, link or proof") }
            let bytes = Array(content.utf8)
            let proof = proofHex.compactMap { Hash(hex: $0) }
            guard SHA256.hash(bytes) == l.contentHash, l.seq == seq, proof.count == proofHex.count, seq < size,
                Merkle.verifyInclusion(index: seq, size: size, leaf: l.leafHash, proof: proof, root: root)
            else { return fail("erasure record \(seq) is not in the export's checkpoint (edited or invented)") }
            guard let v = try? Entry.decodeStored(bytes), v["org"]?.stringValue == org,
                v["category"]?.stringValue == "privacy", v["action"]?.stringValue == Personal.erasureAction,
                let tag = v["target"]?["id"]?.stringValue, v["metadata"]?["subject_tag"]?.stringValue == tag,
                let authority = v["metadata"]?["authority"]?.stringValue
            else { return fail("entry \(seq) is not a data_subject.erased record of org \(org)") }
            // The entries it withholds: the list the trailer gives must be the one it signed.
            var withholds: [UInt64] = []
            if let w = o["withheld"] {
                let list = (w as? [Int]) ?? []
                withholds = list.compactMap { UInt64(exactly: $0) }
                guard !list.isEmpty, withholds.count == list.count else {
                    return fail("erasure record \(seq)'s withheld is not a list of entry numbers")
                }
            }
            let signed = v["metadata"]?["withheld_sha256"]?.stringValue
            guard signed == (withholds.isEmpty ? nil : Personal.withheldDigest(withholds)) else {
                return fail(
                    "erasure record \(seq) withholds other entries than the trailer lists (its signed withheld_sha256 differs)"
                )
            }
            records[seq] = (tag, authority, Set(withholds))
        }
        var out: [ErasedField] = []
        for c in claims {
            guard let r = records[c.record] else {
                return fail(
                    "entry \(c.seq) \(c.path) claims erasure by entry \(c.record), which the trailer does not carry")
            }
            guard r.tag == c.tag.text else {
                return fail(
                    "entry \(c.seq) \(c.path) claims erasure by entry \(c.record), which erased another subject: withheld, not erased"
                )
            }
            out.append(ErasedField(seq: c.seq, path: c.path, record: c.record, authority: r.authority))
        }
        var held: [WithheldEntry] = []
        for c in withheld {
            guard let r = records[c.record] else {
                return fail(
                    "entry \(c.seq) claims to be withheld by entry \(c.record), which the trailer does not carry")
            }
            guard r.withholds.contains(c.seq) else {
                return fail(
                    "entry \(c.seq) claims to be withheld by entry \(c.record), which does not withhold it: content removed without a record"
                )
            }
            held.append(WithheldEntry(seq: c.seq, record: c.record, authority: r.authority))
        }
        return .success((out, held))
    }
}

/// Why an export's personal fields fail.
struct ExportPersonalFailure: Error {
    var message: String
}
