import Foundation
import SegmentStore

/// The export format (format-spec.md §9.3): NDJSON, one object per line.
///
///     {"type":"header","format":"auditlog-export/1","org":…,"origin":…,"verifier_key":…,
///      "checkpoint":<signed note>,"tree_size":N,"filtered":bool,"filter":{…}}
///     {"type":"entry","seq":…,"org_seq":…,"content":<canonical entry, as a JSON string>,
///      "link":<hex>,"hash":<hex>,"proof":[<hex>…]}          (proof: inclusion at tree_size)
///     {"type":"trailer","count":n}
///
/// `content` decodes to exactly the bytes that were hashed. With `filtered` false, the
/// entries are every entry of the org up to `tree_size`, so the org chain must be unbroken.
public enum ExportFormat {
    /// The format tag.
    public static let tag = "auditlog-export/1"

    /// The header line.
    public static func header(org: String, origin: String, verifier: NoteVerifier, checkpoint: SignedCheckpoint, filtered: Bool, filter: [String: String]) -> String {
        let obj: [String: Any] = [
            "type": "header", "format": tag, "org": org, "origin": origin, "verifier_key": verifier.text,
            "checkpoint": checkpoint.note, "tree_size": checkpoint.checkpoint.size, "filtered": filtered, "filter": filter,
        ]
        return json(obj)
    }

    /// An entry line.
    public static func entry(_ e: StoredEntry, proof: [Hash]) -> String {
        json([
            "type": "entry", "seq": e.seq, "org_seq": e.link.orgSeq, "content": String(decoding: e.content, as: UTF8.self),
            "link": e.link.bytes.hex, "hash": e.hash.hex, "proof": proof.map(\.hex),
        ])
    }

    /// The trailer line.
    public static func trailer(count: Int) -> String { json(["type": "trailer", "count": count]) }

    static func json(_ obj: [String: Any]) -> String {
        let d = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: d, as: UTF8.self)
    }

    /// CSV header row of a CSV export.
    public static let csvColumns = "type,seq,org_seq,received_at,category,action,actor,outcome,hash,link,proof,content"

    /// An entry row of a CSV export: the columns a person reads, taken from the hashed content.
    public static func csvRow(_ e: StoredEntry, proof: [Hash]) -> String {
        let v = try? Entry.decodeStored(e.content)
        let cols = [
            "entry", String(e.seq), String(e.link.orgSeq), v?["received_at"]?.stringValue ?? "", v?["category"]?.stringValue ?? "",
            v?["action"]?.stringValue ?? "", (v?["actor"]?["type"]?.stringValue ?? "") + ":" + (v?["actor"]?["id"]?.stringValue ?? ""),
            v?["outcome"]?.stringValue ?? "", e.hash.hex, e.link.bytes.hex, proof.map(\.hex).joined(separator: " "),
            String(decoding: e.content, as: UTF8.self),
        ]
        return cols.map(csv).joined(separator: ",")
    }

    /// Quotes a CSV field (RFC 4180).
    public static func csv(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

/// Offline verification of an export (NDJSON), with nothing but the verifier key.
public struct ExportVerifier {
    /// What the verification found.
    public struct Report: Sendable {
        /// Entries checked.
        public var entries = 0
        /// The org.
        public var org = ""
        /// The checkpoint size the proofs are against.
        public var treeSize: UInt64 = 0
        /// The first failure, with its line number.
        public var failure: String?
        /// True when nothing failed.
        public var ok: Bool { failure == nil }
    }

    let key: NoteVerifier?

    /// A verifier trusting `key` (default: the key named in the export's header, which an
    /// auditor should compare with the operator's published key).
    public init(key: NoteVerifier?) { self.key = key }

    /// Verifies export `lines`.
    public func verify<S: Sequence>(lines: S) -> Report where S.Element == String {
        var r = Report()
        var root = Hash.zero
        var size: UInt64 = 0
        var filtered = true
        var prev: (orgSeq: UInt64, hash: Hash)?
        var sawHeader = false, sawTrailer = false
        for (n, line) in lines.enumerated() where !line.isEmpty {
            let lineNo = n + 1
            func fail(_ m: String) -> Report { r.failure = "line \(lineNo): \(m)"; return r }
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let type = obj["type"] as? String else {
                return fail("not a JSON object with a type")
            }
            if sawTrailer { return fail("data after the trailer") }
            switch type {
            case "header":
                guard !sawHeader, obj["format"] as? String == ExportFormat.tag else { return fail("not an \(ExportFormat.tag) header") }
                sawHeader = true
                do {
                    let k = try key ?? NoteVerifier(obj["verifier_key"] as? String ?? "")
                    let cp = try SignedCheckpoint(note: obj["checkpoint"] as? String ?? "", verifier: k)
                    root = cp.checkpoint.root
                    size = cp.checkpoint.size
                } catch { return fail("checkpoint: \(error)") }
                r.org = obj["org"] as? String ?? ""
                r.treeSize = size
                filtered = obj["filtered"] as? Bool ?? true
            case "entry":
                guard sawHeader else { return fail("entry before the header") }
                guard let seqN = obj["seq"] as? Int, let seq = UInt64(exactly: seqN), let orgSeqN = obj["org_seq"] as? Int,
                      let orgSeq = UInt64(exactly: orgSeqN), let content = obj["content"] as? String,
                      let linkHex = obj["link"] as? String, let link = [UInt8](hex: linkHex), let hashHex = obj["hash"] as? String,
                      let proofHex = obj["proof"] as? [String]
                else { return fail("entry is missing seq, org_seq, content, link, hash or proof") }
                let l: Link
                do { l = try Link(bytes: link) } catch { return fail("link: \(error)") }
                let bytes = Array(content.utf8)
                guard SHA256.hash(bytes) == l.contentHash else { return fail("entry \(seq): content does not match its content hash (edited)") }
                guard l.seq == seq, l.orgSeq == orgSeq else { return fail("entry \(seq): link names seq \(l.seq) / org_seq \(l.orgSeq)") }
                guard CanonicalScan.topLevelString(bytes, key: "org") == r.org else { return fail("entry \(seq) belongs to another org") }
                let h = l.leafHash
                guard h.hex == hashHex else { return fail("entry \(seq): hash is not SHA-256(0x00 || link)") }
                let proof = proofHex.compactMap { Hash(hex: $0) }
                guard proof.count == proofHex.count, Merkle.verifyInclusion(index: seq, size: size, leaf: h, proof: proof, root: root) else {
                    return fail("entry \(seq): inclusion proof does not lead to the checkpoint's root")
                }
                if let p = prev {
                    guard orgSeq > p.orgSeq else { return fail("entry \(seq): entries are not in order") }
                    if orgSeq == p.orgSeq + 1, l.prevOrgHash != p.hash { return fail("entry \(seq): does not chain to the org's previous entry") }
                    if !filtered, orgSeq != p.orgSeq + 1 { return fail("org chain gap: entries \(p.orgSeq + 1)..<\(orgSeq) of the org are missing from an unfiltered export") }
                } else if !filtered, orgSeq != 0 {
                    return fail("unfiltered export starts at org position \(orgSeq), not 0: earlier entries are missing")
                } else if orgSeq == 0, l.prevOrgHash != .zero {
                    return fail("entry \(seq): first entry of the org has a previous org hash")
                }
                prev = (orgSeq, h)
                r.entries += 1
            case "trailer":
                sawTrailer = true
                guard obj["count"] as? Int == r.entries else { return fail("trailer counts \(obj["count"] ?? "?") entries, found \(r.entries): entries were removed or added") }
            default:
                return fail("unknown line type \(type)")
            }
        }
        if !sawHeader { r.failure = "no header line" } else if !sawTrailer { r.failure = "no trailer line: the export is truncated" }
        return r
    }
}
