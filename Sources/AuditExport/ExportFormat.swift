import AuditBase
import AuditEntries
import AuditIndex
import Foundation
import LogProofs
import TimeStamping

/// The export format (format-spec.md §9.3): NDJSON, one object per line.
///
///     {"type":"header","format":"auditlog-export/7","org":…,"origin":…,"verifier_key":…,
///      "checkpoint":<signed note>,"tree_size":N,"filtered":bool,"filter":{…},
///      "archived_bundles":[{"bundle":…,"manifest":…,"manifest_note":…}…],
///      "consistency":{"from":M,"proof":[…]}?}
///     {"type":"entry"|"context","seq":…,"org_seq":…,"content":<canonical entry>,
///      "link":<hex>,"hash":<hex>,"gap":["<height>:<base64url>"…],"personal":{…}?}
///     {"type":"entry"|"context","seq":…,"org_seq":…,"link":…,"hash":…,"gap":[…],
///      "withheld":{"authority":…,"entry":N}}
///     {"type":"trailer","count":<entry lines>,"context":<context lines>,"gap":[…],
///      "erasures":[{"seq":…,"content":…,"link":…,"proof":[…],"withheld":[…]?}…]?,
///      "timestamps":[{"tree_size":…,"root_hash":…,"authority":…,"time":…,"token":…,
///                     "consistency":[…]}…]?}
///
/// `personal` (§5.4.4) opens the entry's commitments or names the erasure record of each
/// one it cannot; an entry an erasure withholds (it names the subject in the clear) has no
/// `content`, only its link and the record; the trailer's `erasures` carries each record
/// named, with its inclusion proof in the export's checkpoint and the entries it withholds.
/// The trailer's `timestamps` (§8.7) are RFC 3161 tokens over earlier checkpoints of this log
/// (each with a consistency proof to the export's): each bounds when the entries below its
/// size existed.
///
/// One proof for the whole export: `gap` holds the perfect subtrees (height, hash) covering
/// the leaves between the previous line's entry and this one; with the leaves themselves they
/// rebuild the checkpoint's root left to right.
///
/// `entry` lines are the selection; `context` lines are entries of the org that prove the
/// selection's edges: the last one is always the export's own audit entry (the anchor), at
/// exactly `tree_size − 1`, whose signed metadata states the filter.
public enum ExportFormat {
    /// The format tag. /5 added `personal` beside entries and the trailer's `erasures`
    /// (§5.4.4); /6 the trailer's `timestamps` (§8.7); /7 spells gap hashes in base64url
    /// (`GapBlock`), a third shorter than hex.
    public static let tag = "auditlog-export/7"
    /// The tags a verifier reads: /4 exports (before personal fields) have neither member, /5
    /// no time-stamps, /4 to /6 gap hashes in hex.
    public static let readable = ["auditlog-export/4", "auditlog-export/5", "auditlog-export/6", tag]

    /// The header line.
    public static func header(
        org: String, origin: String, verifier: LogKeys, checkpoint: SignedCheckpoint, filter: [String: String],
        archivedBundles: [ArchivedRange], consistency: (from: UInt64, proof: [Hash])? = nil
    ) -> String {
        // Each bundle with its manifest and the log's signature over it: its seq range and
        // the org's count in it are signed, so a verifier accepts a gap only where named
        // bundles hold exactly the missing entries.
        let bundles: [[String: Any]] = archivedBundles.map { b in
            var o: [String: Any] = ["bundle": b.bundle, "manifest_note": b.manifestNote]
            if let m = b.manifest { o["manifest"] = m }
            return o
        }
        var obj: [String: Any] = [
            "type": "header", "format": tag, "org": org, "origin": origin, "verifier_key": verifier.text,
            "checkpoint": checkpoint.note, "tree_size": checkpoint.checkpoint.size, "filtered": !filter.isEmpty,
            "filter": filter,
            "archived_bundles": bundles,
        ]
        if let c = consistency { obj["consistency"] = ["from": c.from, "proof": c.proof.map(\.hex)] as [String: Any] }
        // Present once the log's key was handed on (§8.8): the chain from `verifier_key`.
        if !verifier.successions.isEmpty { obj["key_successions"] = verifier.notes }
        return json(obj)
    }

    /// An entry line: part of the selection, or (`context`) a neighbour that proves its edges,
    /// after the subtrees covering the leaves since the previous line's entry.
    /// Written directly (members in sorted order, as the header's): exports stream millions.
    /// `withheld` (an erasure record, `{"authority":…,"entry":N}`) replaces the content.
    public static func entry(
        _ e: StoredEntry, gap: [(height: Int, hash: Hash)], context: Bool = false, personal: String? = nil,
        withheld: String? = nil
    ) -> String {
        var o: [UInt8] = []
        o.reserveCapacity(e.content.count + 400 + gap.count * 70)
        func raw(_ s: StaticString) { s.withUTF8Buffer { o.append(contentsOf: $0) } }
        if withheld == nil {
            raw("{\"content\":")
            appendJSONString(e.content, to: &o)
            raw(",\"gap\":[")
        } else {
            raw("{\"gap\":[")
        }
        for (i, b) in gap.enumerated() {
            if i > 0 { o.append(0x2C) }
            o.append(0x22)
            GapBlock.append(b, to: &o)
            o.append(0x22)
        }
        raw("],\"hash\":\"")
        o.append(contentsOf: e.hash.hex.utf8)
        raw("\",\"link\":\"")
        o.append(contentsOf: e.link.bytes.hex.utf8)
        raw("\",\"org_seq\":")
        o.append(contentsOf: String(e.link.orgSeq).utf8)
        if let personal, withheld == nil {
            raw(",\"personal\":")
            o.append(contentsOf: personal.utf8)
        }
        raw(",\"seq\":")
        o.append(contentsOf: String(e.seq).utf8)
        if context { raw(",\"type\":\"context\"") } else { raw(",\"type\":\"entry\"") }
        if let withheld {
            raw(",\"withheld\":")
            o.append(contentsOf: withheld.utf8)
        }
        raw("}")
        return String(decoding: o, as: UTF8.self)
    }

    /// `bytes` (UTF-8) as a JSON string: `"` and `\` escaped, control characters as `\u00XX`
    /// (or their short forms), everything else as it is.
    static func appendJSONString(_ bytes: [UInt8], to o: inout [UInt8]) {
        o.append(0x22)
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        for b in bytes {
            switch b {
            case 0x22:
                o.append(0x5C)
                o.append(0x22)
            case 0x5C:
                o.append(0x5C)
                o.append(0x5C)
            case 0x0A:
                o.append(0x5C)
                o.append(0x6E)
            case 0x0D:
                o.append(0x5C)
                o.append(0x72)
            case 0x09:
                o.append(0x5C)
                o.append(0x74)
            case 0x08:
                o.append(0x5C)
                o.append(0x62)
            case 0x0C:
                o.append(0x5C)
                o.append(0x66)
            case 0..<0x20: o.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: o.append(b)
            }
        }
        o.append(0x22)
    }

    /// The trailer line; each erasure record with its proof and the entries it withholds.
    public static func trailer(
        count: Int, context: Int, gap: [(height: Int, hash: Hash)],
        erasures: [(record: StoredEntry, proof: [Hash], withheld: [UInt64])] = [],
        timestamps: [(stamp: StampedCheckpoint, consistency: [Hash])] = []
    ) -> String {
        var o: [String: Any] = ["type": "trailer", "count": count, "context": context, "gap": gap.map(GapBlock.text)]
        if !erasures.isEmpty {
            o["erasures"] = erasures.map { (e, proof, withheld) -> [String: Any] in
                var r: [String: Any] = [
                    "seq": e.seq, "content": String(decoding: e.content, as: UTF8.self), "link": e.link.bytes.hex,
                    "proof": proof.map(\.hex),
                ]
                if !withheld.isEmpty { r["withheld"] = withheld }
                return r
            }
        }
        if !timestamps.isEmpty {
            o["timestamps"] = timestamps.map { (s, proof) -> [String: Any] in
                [
                    "tree_size": s.size, "root_hash": Data(s.root.bytes).base64EncodedString(),
                    "authority": s.authority, "time": Timestamp.format(s.time),
                    "token": Data(s.token).base64EncodedString(), "consistency": proof.map(\.hex),
                ]
            }
        }
        return json(o)
    }

    static func json(_ obj: [String: Any]) -> String {
        let d =
            (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        return String(decoding: d, as: UTF8.self)
    }

    // MARK: CSV

    /// The column names, the first line of a CSV export.
    public static let csvColumns =
        "type,seq,org_seq,received_at,category,action,actor,outcome,hash,link,gap,content,personal"

    /// The CSV row carrying the header (or trailer) object in `content`.
    public static func csvMeta(_ type: String, _ jsonLine: String) -> String {
        type + ",,,,,,,,,,," + csv(jsonLine) + ","
    }

    /// An entry row: the columns a person reads, taken from the hashed content (the verifier
    /// checks each against it).
    /// A withheld entry's row has empty readable columns and content, and its 13th column is
    /// `{"withheld":{"authority":…,"entry":N}}`.
    public static func csvRow(
        _ e: StoredEntry, gap: [(height: Int, hash: Hash)], context: Bool = false, personal: String? = nil,
        withheld: String? = nil
    ) -> String {
        let c = withheld == nil ? CSVColumns(content: e.content) : CSVColumns()
        let cols = [
            context ? "context" : "entry", String(e.seq), String(e.link.orgSeq), c.receivedAt, c.category, c.action,
            c.actor, c.outcome,
            e.hash.hex, e.link.bytes.hex, gap.map(GapBlock.text).joined(separator: " "),
            withheld == nil ? String(decoding: e.content, as: UTF8.self) : "",
            withheld.map { "{\"withheld\":" + $0 + "}" } ?? personal ?? "",
        ]
        return cols.map(csv).joined(separator: ",")
    }

    /// Quotes a CSV field (RFC 4180).
    public static func csv(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

/// The readable columns of a CSV entry row, as the content gives them: `received_at`,
/// `category`, `action`, `actor` (`actor.type:actor.id`), `outcome`.
struct CSVColumns: Equatable {
    var receivedAt = "", category = "", action = "", actor = "", outcome = ""

    init() {}

    init(content: [UInt8]) {
        guard let v = try? Entry.decodeStored(content) else { return }
        receivedAt = v["received_at"]?.stringValue ?? ""
        category = v["category"]?.stringValue ?? ""
        action = v["action"]?.stringValue ?? ""
        // A committed actor by its subject tag, as the index keeps it (§5.4.1).
        let id = v["actor"]?["id"]
        actor =
            (v["actor"]?["type"]?.stringValue ?? "") + ":"
            + (id?.stringValue ?? id.flatMap(Personal.commitment(of:)).map { Personal.indexID(tag: $0.s) } ?? "")
        outcome = v["outcome"]?.stringValue ?? ""
    }

    init(row: [String]) {
        (receivedAt, category, action, actor, outcome) = (row[3], row[4], row[5], row[6], row[7])
    }
}

/// What an export selects, as its header's `filter` states it (format-spec.md §9.3): the same
/// rules as the read port's queries, so the verifier can check every line against them.
public struct ExportSelection: Sendable, Equatable {
    /// The index filter.
    public var filter = QueryFilter()
    /// Free text (ASCII case-insensitive, anywhere in the canonical entry).
    public var text: String?

    /// A filter the header states wrongly.
    public struct Invalid: Error, CustomStringConvertible { public var description: String }

    /// Everything.
    public init() {}

    /// The selection a header's `filter` object states.
    public init(header: [String: String]) throws(Invalid) {
        for (k, v) in header {
            switch k {
            case "from", "to":
                guard let t = Timestamp.parse(v) else {
                    throw Invalid(description: "filter \(k) '\(v.prefix(40))' is not an RFC 3339 time")
                }
                if k == "from" { filter.from = t } else { filter.to = t }
            case "category":
                guard let c = Category(rawValue: v) else {
                    throw Invalid(description: "filter category '\(v.prefix(40))' is not a category")
                }
                filter.category = c
            case "outcome":
                guard let o = Outcome(rawValue: v) else {
                    throw Invalid(description: "filter outcome '\(v.prefix(40))' is not an outcome")
                }
                filter.outcome = o
            case "action": filter.action = v
            case "actor": filter.actor = v
            case "q": text = v
            default: throw Invalid(description: "unknown filter '\(k.prefix(40))'")
            }
        }
    }

    /// Whether the export can prove it holds every entry it selects: only for a time range
    /// (received_at never decreases, so the org's entries of a range are consecutive).
    public var provable: Bool {
        filter.category == nil && filter.outcome == nil && filter.action == nil && filter.actor == nil && text == nil
    }

    /// Whether stored entry `content` is selected; nil when it lacks a field the filter reads.
    public func matches(_ content: [UInt8]) -> Bool? {
        guard let (_, f) = Entry.indexFields(ofStored: content) else { return nil }
        guard filter.matches(f) else { return false }
        if let text { return TextMatch.contains(content, TextMatch.fold(text)) }
        return true
    }
}
