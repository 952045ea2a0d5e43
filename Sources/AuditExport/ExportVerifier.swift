import Archive
import AuditBase
import AuditEntries
import AuditIndex
import Foundation
import LogProofs
import TimeStamping

/// Offline verification of an export (format-spec.md §9.3), with nothing but the verifier key:
/// every line authentic, the header's claims bound to the export's own signed audit entry,
/// and the selection's completeness proven where it can be (a time range or everything).
public struct ExportVerifier {
    /// How much of its claim the export proves.
    public enum Completeness: Sendable, Equatable {
        /// Every entry of the org the filter selects, in the signed tree, is in the export.
        case complete
        /// Each entry is authentic and selected, but the export cannot show that none is
        /// missing: why.
        case selection(String)
    }

    /// What the verification found.
    public struct Report: Sendable {
        /// Selected entries checked (`entry` lines).
        public var entries = 0
        /// Neighbouring entries checked (`context` lines, the export's own audit entry among them).
        public var context = 0
        /// The org.
        public var org = ""
        /// The checkpoint size the proofs are against.
        public var treeSize: UInt64 = 0
        /// The filter as the header (and the signed audit entry) state it.
        public var filter: [String: String] = [:]
        /// Proven complete, or a selection and why not.
        public var completeness = Completeness.selection("not verified")
        /// The export's signed checkpoint, as its header holds it (with any witnesses'
        /// cosignature lines after the log's signature).
        public var checkpointNote = ""
        /// The key successions followed from the trusted key (format-spec.md §8.8), oldest first.
        public var successions: [KeySuccession] = []
        /// Personal values checked against their commitments (§5.4.4).
        public var opened = 0
        /// Fields erased under a record the export proves.
        public var erased: [ErasedField] = []
        /// Entries withheld under a record the export proves (§5.4.3).
        public var withheld: [WithheldEntry] = []
        /// The time-stamp tokens the trailer carries (§8.7), checked against the trust file
        /// when one was given.
        public var timestamps: [TimeBound] = []
        /// The first entry of the export (the lower bound of what its tokens cover).
        public var firstSeq: UInt64?
        /// The first failure, with its line number.
        public var failure: String?
        /// True when nothing failed.
        public var ok: Bool { failure == nil }
    }

    let key: NoteVerifier?
    /// Signed checkpoint notes, checked with the keys the header's successions lead to.
    let kept: [String]
    let timeTrust: TimeStampTrust?

    /// A verifier trusting `key` (default: the key named in the export's header, which an
    /// auditor should compare with the operator's published key) and the key successions from
    /// it that the header carries (§8.8), and requiring the export's checkpoint to extend each
    /// of `kept` (checkpoint notes the auditor saw earlier, signed by those keys); with
    /// `timeTrust`, the certificates trusted to sign time-stamp tokens.
    public init(key: NoteVerifier?, kept: [String] = [], timeTrust: TimeStampTrust? = nil) {
        self.key = key
        self.kept = kept
        self.timeTrust = timeTrust
    }

    struct Line {
        var type: String, seq: UInt64, orgSeq: UInt64, time: Int64, hash: Hash, content: [UInt8]
    }

    /// Verifies export `lines`; `format` is the file's (`ndjson` or `csv`), which the signed
    /// audit entry names.
    public func verify<S: Sequence>(lines: S, format: String = "ndjson") -> Report where S.Element == String {
        var r = Report()
        var root = Hash.zero
        var size: UInt64 = 0
        var origin = ""
        var selection = ExportSelection()
        var archived: [SignedBundle] = []
        var unsigned: [String] = []
        var prev: Line?
        var gaps: [Range<UInt64>] = []
        // The one proof: every line's gap subtrees and leaf, left to right, rebuild the root.
        var range = CompactRange()
        var proofFailure: String?
        var spelling = GapBlock.Spelling.base64url
        func cover(_ blocks: Any?, upTo end: UInt64) -> String? {
            guard let list = blocks as? [String] else { return "gap is missing or not a list" }
            for b in list {
                guard let (h, hash) = GapBlock.parse(Substring(b), spelling) else {
                    return "gap block '\(b.prefix(80))' is not \(GapBlock.shape(spelling))"
                }
                let width = UInt64(1) << UInt64(h)
                guard range.size % width == 0, range.size <= end, end - range.size >= width else {
                    return "gap block of height \(h) at leaf \(range.size) is not an aligned subtree before leaf \(end)"
                }
                range.append(subtree: hash, height: h)
            }
            return range.size == end ? nil : "gap subtrees cover leaves up to \(range.size), not up to \(end)"
        }
        var sawHeader = false
        var sawTrailer = false
        var claims: [ErasureClaim] = []
        var withheldClaims: [WithheldClaim] = []
        // A gap in a selection that claims completeness (org positions `g`, between the
        // entries at `seqs`' ends): only the named bundles may explain it, and only if their
        // signed manifests put exactly that many of the org's entries in that seq range.
        func gap(_ g: Range<UInt64>, seqs: Range<UInt64>) -> String? {
            let within = archived.filter { seqs.lowerBound <= $0.firstSeq && $0.endSeq <= seqs.upperBound }
            // Counts from signed manifests, still summed without trapping (saturating).
            let held = within.reduce(UInt64(0)) { s, b in
                let (v, o) = s.addingReportingOverflow(b.entries)
                return o ? .max : v
            }
            if held == UInt64(g.count) {
                gaps.append(g)
                return nil
            }
            let named =
                within.isEmpty
                ? "it names no archived bundle in that range"
                : "the archived bundles it names there (\(within.map(\.name).joined(separator: ", "))) hold \(held) of them by their signed manifests"
            let note =
                unsigned.isEmpty
                ? "" : "; \(unsigned.joined(separator: ", ")) named without a signed manifest cannot account for any"
            return
                "org entries at positions \(g.lowerBound)..<\(g.upperBound) (between seq \(seqs.lowerBound) and \(seqs.upperBound)) are missing from an export that selects them; \(named)\(note): entries were removed"
        }
        for (n, line) in lines.enumerated() where !line.isEmpty {
            let lineNo = n + 1
            func fail(_ m: String) -> Report {
                r.failure = "line \(lineNo): \(m)"
                return r
            }
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let type = obj["type"] as? String
            else {
                return fail("not a JSON object with a type")
            }
            if sawTrailer { return fail("data after the trailer") }
            switch type {
            case "header":
                guard !sawHeader, let f = obj["format"] as? String, ExportFormat.readable.contains(f) else {
                    return fail("not an \(ExportFormat.readable.joined(separator: " or ")) header")
                }
                sawHeader = true
                spelling = GapBlock.spelling(of: f)
                let cp: SignedCheckpoint
                let k: LogKeys
                // Absent before the first handover; present, it must be statements (§8.8).
                guard let notes = (obj["key_successions"] ?? [String]()) as? [String] else {
                    return fail("key_successions is not a list of key succession statements")
                }
                do {
                    k = try LogKeys(
                        trusting: try key ?? NoteVerifier(obj["verifier_key"] as? String ?? ""), successions: notes)
                    cp = try SignedCheckpoint(note: obj["checkpoint"] as? String ?? "", verifier: k)
                } catch { return fail("checkpoint: \(error)") }
                r.successions = k.successions
                root = cp.checkpoint.root
                size = cp.checkpoint.size
                origin = cp.checkpoint.origin
                r.checkpointNote = cp.note
                guard obj["tree_size"] as? Int == Int(exactly: size) else {
                    return fail("tree_size differs from the signed checkpoint's size \(size)")
                }
                guard let org = obj["org"] as? String, Entry.isValidOrgName(org) else {
                    return fail("the header names no valid org")
                }
                r.org = org
                r.treeSize = size
                guard let f = obj["filter"] as? [String: String] else {
                    return fail("the header's filter is not an object of strings")
                }
                do { selection = try ExportSelection(header: f) } catch { return fail("\(error)") }
                r.filter = f
                guard obj["filtered"] as? Bool == !f.isEmpty else {
                    return fail("'filtered' contradicts the filter (\(f.isEmpty ? "none" : "given"))")
                }
                do { (archived, unsigned) = try SignedBundle.read(obj["archived_bundles"], org: org, key: k) } catch {
                    return fail("\(error)")
                }
                if let m = checkKept(cp, keys: k, consistency: obj["consistency"]) { return fail(m) }
            case "entry", "context":
                guard sawHeader else { return fail("entry before the header") }
                guard let seqN = obj["seq"] as? Int, let seq = UInt64(exactly: seqN),
                    let orgSeqN = obj["org_seq"] as? Int, let orgSeq = UInt64(exactly: orgSeqN),
                    let linkHex = obj["link"] as? String, let link = [UInt8](hex: linkHex),
                    let hashHex = obj["hash"] as? String
                else { return fail("entry is missing seq, org_seq, link or hash") }
                // A withheld entry (§5.4.3) has no content: its link stands for it.
                let content = obj["content"] as? String
                guard (content == nil) != (obj["withheld"] == nil) else {
                    return fail(
                        content == nil
                            ? "entry \(seq) is missing its content" : "entry \(seq) is withheld but carries content")
                }
                let l: Link
                do { l = try Link(bytes: link) } catch { return fail("link: \(error)") }
                guard l.seq == seq, l.orgSeq == orgSeq else {
                    return fail("entry \(seq): link names seq \(l.seq) / org_seq \(l.orgSeq)")
                }
                let bytes = Array((content ?? "").utf8)
                if content != nil {
                    guard SHA256.hash(bytes) == l.contentHash else {
                        return fail("entry \(seq): content does not match its content hash (edited)")
                    }
                    switch Self.checkPersonal(seq: seq, content: bytes, personal: obj["personal"]) {
                    case .success(let p):
                        r.opened += p.opened
                        claims += p.claims
                    case .failure(let f): return fail(f.message)
                    }
                    guard CanonicalScan.topLevelString(bytes, key: "org") == r.org else {
                        return fail("entry \(seq) belongs to another org")
                    }
                } else {
                    switch Self.withheldClaim(seq: seq, obj["withheld"], personal: obj["personal"]) {
                    case .success(let c): withheldClaims.append(c)
                    case .failure(let f): return fail(f.message)
                    }
                    guard selection.provable else {
                        return fail(
                            "entry \(seq) is withheld in a filtered export: a withheld entry matches no filter but time"
                        )
                    }
                }
                let h = l.leafHash
                guard h.hex == hashHex else { return fail("entry \(seq): hash is not SHA-256(0x00 || link)") }
                guard seq < size else { return fail("entry \(seq) is beyond the checkpoint's tree (size \(size))") }
                // A proof that breaks here is reported at the end, unless something more telling
                // (a missing entry, a filter that is not the signed one) is found first.
                if proofFailure == nil {
                    if seq < range.size {
                        proofFailure = "line \(lineNo): entry \(seq): entries are not in order"
                    } else if let m = cover(obj["gap"], upTo: seq) {
                        proofFailure =
                            "line \(lineNo): entry \(seq): \(m): the export does not rebuild the checkpoint's root (entries removed, added or moved)"
                    } else {
                        range.append(h)
                    }
                }
                let time: Int64
                if content != nil {
                    guard let t = CanonicalScan.topLevelString(bytes, key: "received_at").flatMap(Timestamp.parse),
                        let selected = selection.matches(bytes)
                    else {
                        return fail("entry \(seq): content lacks received_at, category, outcome, action or actor")
                    }
                    if type == "entry", !selected { return fail("entry \(seq) does not match the export's filter") }
                    if type == "context", selected {
                        return fail(
                            "entry \(seq) matches the export's filter but is marked context: it belongs to the selection"
                        )
                    }
                    time = t
                } else {
                    // Its time is not shown: the last one shown stands for it (times never decrease).
                    time = prev?.time ?? .min
                }
                if let p = prev {
                    guard orgSeq > p.orgSeq else { return fail("entry \(seq): entries are not in order") }
                    guard time >= p.time else {
                        return fail("entry \(seq): received_at is earlier than the previous entry's")
                    }
                    if orgSeq == p.orgSeq + 1 {
                        do { try OrgPosition(count: orgSeq, lastSeq: p.seq, lastHash: p.hash).expect(l) } catch {
                            return fail("\(error)")
                        }
                    } else if selection.provable, !(selection.filter.to.map { p.time >= $0 } ?? false) {
                        // After an entry at or past `to`, every later one is too: no gap matters.
                        if let m = gap(p.orgSeq + 1..<orgSeq, seqs: p.seq + 1..<seq) { return fail(m) }
                    }
                } else if orgSeq == 0 {
                    do { try OrgPosition.start.expect(l) } catch { return fail("\(error)") }
                } else if selection.provable,
                    !(content != nil && type == "context" && selection.filter.from.map { time < $0 } ?? false)
                {
                    // Only a shown entry before `from` may start the lines: a withheld one's time is unknown.
                    if let m = gap(0..<orgSeq, seqs: 0..<seq) { return fail(m) }
                }
                prev = Line(type: type, seq: seq, orgSeq: orgSeq, time: time, hash: h, content: bytes)
                if r.firstSeq == nil { r.firstSeq = seq }
                if type == "entry" { r.entries += 1 } else { r.context += 1 }
            case "trailer":
                sawTrailer = true
                guard obj["count"] as? Int == r.entries else {
                    return fail(
                        "trailer counts \(obj["count"] ?? "?") entries, found \(r.entries): entries were removed or added"
                    )
                }
                guard obj["context"] as? Int == r.context else {
                    return fail("trailer counts \(obj["context"] ?? "?") context entries, found \(r.context)")
                }
                if let m = checkAnchor(prev, size: size, org: r.org, filter: r.filter, format: format) {
                    return fail(m)
                }
                if let pf = proofFailure {
                    r.failure = pf
                    return r
                }
                if let m = cover(obj["gap"], upTo: size) { return fail("trailer: \(m)") }
                guard range.root() == root else {
                    return fail(
                        "the exported entries with their gap subtrees do not rebuild the checkpoint's root: an entry or a subtree hash was altered, added or removed"
                    )
                }
                switch Self.checkErasures(
                    obj["erasures"], claims: claims, withheld: withheldClaims, org: r.org, size: size, root: root)
                {
                case .success(let e): (r.erased, r.withheld) = e
                case .failure(let f): return fail(f.message)
                }
                switch Self.checkTimestamps(
                    obj["timestamps"], origin: origin, size: size, root: root, trust: timeTrust)
                {
                case .success(let t): r.timestamps = t
                case .failure(let f): return fail(f.message)
                }
            default:
                return fail("unknown line type \(type.prefix(40))")
            }
        }
        if !sawHeader {
            r.failure = "no header line"
            return r
        }
        if !sawTrailer {
            r.failure = "no trailer line: the export is truncated"
            return r
        }
        let missing = gaps.map { "\($0.lowerBound)..<\($0.upperBound)" }.joined(separator: ", ")
        if !selection.provable {
            r.completeness = .selection(
                "only an export of everything or of a time range can prove that no selected entry is missing; this filter (\(r.filter.keys.sorted().joined(separator: ", "))) leaves out entries whose content the export does not hold"
            )
        } else if !gaps.isEmpty {
            r.completeness = .selection(
                "org entries at positions \(missing) are not in the export; the log's signed bundle manifests put them in archived bundles \(archived.map(\.name).joined(separator: ", ")) (restore them with `auditctl archive restore` and export again)"
            )
        } else {
            r.completeness = .complete
        }
        return r
    }
}
