import AuditBase
import AuditEntries
import AuditExport
import AuditIndex
import ChainIndex
import LogProofs
import PersonalStore

/// The lines of an export after its header (format-spec.md §9.3), page by page: for a time
/// range, the org's entry just before `from` (context); the selected entries (entry); for a
/// time range, the first entry at or after `to` (context); the export's own audit entry, the
/// last leaf of its checkpoint (context, unless it was selected).
struct ExportPlan: Sendable {
    let org: String
    let filter: QueryFilter
    let text: String?
    /// The export's own audit entry: its checkpoint's size is `anchor + 1`.
    let anchor: UInt64
    let csv: Bool

    struct State: Sendable {
        enum Step: Sendable { case lowerEdge, selection, upperEdge, anchor, finished }
        var step = Step.lowerEdge
        var cursor: UInt64?
        var lastSeq: UInt64?
        /// The first line's entry: time-stamps over larger trees bound the export's entries.
        var firstSeq: UInt64?
        /// The first leaf not yet covered by a line (its entry or a gap before it).
        var covered: UInt64 = 0
        var entries = 0, context = 0
        /// The erasure records the lines named (their seqs): the trailer carries each.
        var erasures: Set<UInt64> = []
        var done: Bool { step == .finished }
    }

    /// Only a time range (or everything) is proven complete: only then are edges shown.
    var timeRangeOnly: Bool { text == nil && filter.isTimeRangeOnly }

    /// The subtrees covering the leaves after the last line, up to the checkpoint's size
    /// (none when the export ends, as it does, with its anchor: the last leaf).
    func finalGap(_ s: State, ledger: Ledger) throws -> [(height: Int, hash: Hash)] {
        try ledger.subtrees(from: s.covered, to: anchor + 1)
    }

    /// The erasure records the lines named, each with its inclusion proof in the export's
    /// checkpoint (its size is `anchor + 1`) and the entries it withholds.
    func erasureRecords(
        _ s: State, ledger: Ledger
    ) throws -> [(record: StoredEntry, proof: [Hash], withheld: [UInt64])] {
        try s.erasures.sorted().filter { $0 <= anchor }.map {
            (
                try ledger.entry(seq: $0), try ledger.inclusionProof(seq: $0, size: anchor + 1),
                ledger.personal.withheld.entries(of: $0)
            )
        }
    }

    /// The org's entries from the last one before `seq` that is not withheld (or its first
    /// entry) up to `seq`: a time range's lower edge is an entry whose time a verifier can
    /// read, and the withheld ones after it are shown as what they are.
    func edgeBefore(_ seq: UInt64, ledger: Ledger) throws -> [UInt64] {
        var out = [seq]
        var cursor = seq
        while ledger.withholding(cursor) != nil {
            guard let h = try ledger.query(org: org, newestFirst: true, limit: 1, cursor: cursor).first else { break }
            out.append(h.seq)
            cursor = h.seq
        }
        return out.reversed()
    }

    /// The org's entries from `seq` up to the first one that is not withheld, before the anchor.
    func edgeAfter(_ seq: UInt64, ledger: Ledger) throws -> [UInt64] {
        var out = [seq]
        var cursor = seq
        while ledger.withholding(cursor) != nil {
            guard let h = try ledger.query(org: org, newestFirst: false, limit: 1, cursor: cursor).first,
                h.seq < anchor
            else { break }
            out.append(h.seq)
            cursor = h.seq
        }
        return out
    }

    /// The next chunk of lines.
    func next(_ s: inout State, ledger: Ledger, page: Int) throws -> String {
        var out = ""
        func emit(_ e: StoredEntry, context: Bool) throws {
            let withheld = ledger.withholding(e.seq)
            // A filtered selection leaves a withheld entry out: a match would say what it holds.
            if withheld != nil, !timeRangeOnly { return }
            let gap = try ledger.subtrees(from: s.covered, to: e.seq)
            var personal: String?
            if let withheld {
                s.erasures.insert(withheld.recordSeq)
            } else {
                let disclosed = ledger.disclose(e)
                for d in disclosed { if case .erased(let r) = d.state { s.erasures.insert(r.recordSeq) } }
                personal = Disclosed.json(disclosed)
            }
            let named = withheld.map(Disclosed.recordJSON)
            out +=
                (csv
                    ? ExportFormat.csvRow(e, gap: gap, context: context, personal: personal, withheld: named)
                    : ExportFormat.entry(e, gap: gap, context: context, personal: personal, withheld: named)) + "\n"
            if context { s.context += 1 } else { s.entries += 1 }
            s.lastSeq = e.seq
            if s.firstSeq == nil { s.firstSeq = e.seq }
            s.covered = e.seq + 1
        }
        switch s.step {
        case .lowerEdge:
            if timeRangeOnly, let from = filter.from,
                let hit = try ledger.query(org: org, filter: QueryFilter(to: from), newestFirst: true, limit: 1).first,
                hit.seq <= anchor
            {
                // (An entry written after the anchor is beyond the export's tree: it cannot be an edge.)
                for seq in try edgeBefore(hit.seq, ledger: ledger) {
                    try emit(try ledger.entry(seq: seq), context: true)
                }
            }
            s.step = .selection
        case .selection:
            let (entries, next) = try ledger.search(
                org: org, filter: filter, text: text, newestFirst: false, limit: page, cursor: s.cursor)
            for e in entries where e.seq <= anchor { try emit(e, context: false) }
            s.cursor = next
            if next == nil || entries.contains(where: { $0.seq >= anchor }) { s.step = .upperEdge }
        case .upperEdge:
            if timeRangeOnly, let to = filter.to,
                let hit = try ledger.query(org: org, filter: QueryFilter(from: to), newestFirst: false, limit: 1).first,
                anchor > hit.seq, s.lastSeq.map({ hit.seq > $0 }) ?? true
            {
                for seq in try edgeAfter(hit.seq, ledger: ledger) {
                    try emit(try ledger.entry(seq: seq), context: true)
                }
            }
            s.step = .anchor
        case .anchor:
            if s.lastSeq != anchor { try emit(try ledger.entry(seq: anchor), context: true) }
            s.step = .finished
        case .finished:
            break
        }
        return out
    }
}
