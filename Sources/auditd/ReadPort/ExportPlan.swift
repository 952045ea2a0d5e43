import ChainIndex

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
        var entries = 0, context = 0
        var done: Bool { step == .finished }
    }

    /// Only a time range (or everything) is proven complete: only then are edges shown.
    var timeRangeOnly: Bool {
        text == nil && filter.category == nil && filter.outcome == nil && filter.action == nil && filter.actor == nil
    }

    /// The next chunk of lines.
    func next(_ s: inout State, ledger: Ledger, page: Int) throws -> String {
        var out = ""
        func emit(_ e: StoredEntry, context: Bool) throws {
            emit(e, proof: try ledger.inclusionProof(seq: e.seq, size: anchor + 1), context: context)
        }
        func emit(_ e: StoredEntry, proof: [Hash], context: Bool) {
            out += (csv ? ExportFormat.csvRow(e, proof: proof, context: context) : ExportFormat.entry(e, proof: proof, context: context)) + "\n"
            if context { s.context += 1 } else { s.entries += 1 }
            s.lastSeq = e.seq
        }
        switch s.step {
        case .lowerEdge:
            if timeRangeOnly, let from = filter.from,
               let hit = try ledger.query(org: org, filter: QueryFilter(to: from), newestFirst: true, limit: 1).first {
                try emit(try ledger.entry(seq: hit.seq), context: true)
            }
            s.step = .selection
        case .selection:
            let (entries, next) = try ledger.search(org: org, filter: filter, text: text, newestFirst: false, limit: page, cursor: s.cursor)
            let selected = entries.filter { $0.seq <= anchor }
            let proofs = try ledger.inclusionProofs(seqs: selected.map(\.seq), size: anchor + 1)
            for (e, proof) in zip(selected, proofs) { emit(e, proof: proof, context: false) }
            s.cursor = next
            if next == nil || entries.contains(where: { $0.seq >= anchor }) { s.step = .upperEdge }
        case .upperEdge:
            if timeRangeOnly, let to = filter.to,
               let hit = try ledger.query(org: org, filter: QueryFilter(from: to), newestFirst: false, limit: 1).first,
               anchor > hit.seq, s.lastSeq.map({ hit.seq > $0 }) ?? true {
                try emit(try ledger.entry(seq: hit.seq), context: true)
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
