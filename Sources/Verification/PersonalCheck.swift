import AuditBase
import AuditEntries
import PersonalStore

/// The personal store against the entries (format-spec.md §10 item 13): every committed field
/// of every hot entry is opened by its row (the value and nonce give the commitment), or its
/// subject's erasure is recorded, by a `data_subject.erased` entry of the log that names its tag.
/// A value that does not open, or one missing without an erasure, fails; so does an erasure
/// whose record is not that entry.
public final class PersonalCheck {
    let store: PersonalStore
    private var rows: [(seq: UInt64, tag: SubjectTag, opened: [PersonalStore.Opened])] = []
    private var next = 0
    private var fileIndex = 0
    /// Erasure records seen among the entries: seq → tag, and the digest of the entries it
    /// withholds (its signed `withheld_sha256`).
    private var records: [UInt64: (tag: SubjectTag, withholds: String?)] = [:]
    /// Values checked against their commitments.
    public private(set) var opened = 0
    /// Fields whose subject was erased.
    public private(set) var erased = 0
    /// Erased fields by subject tag.
    private var erasedByTag: [SubjectTag: Int] = [:]

    /// Each completed erasure (its record and authority) with the fields found erased under it
    /// and the entries it withholds.
    public var erasures: [(record: UInt64, authority: String, fields: Int, withheld: Int)] {
        store.erasureRecords.map {
            ($0.recordSeq, $0.authority, erasedByTag[$0.tag] ?? 0, store.withheld.entries(of: $0.recordSeq).count)
        }
    }

    /// A check of `store` (opened read-only).
    public init(store: PersonalStore) { self.store = store }

    /// The rows of `seq` (rows come in seq order; those of entries not checked are passed over).
    private func rows(of seq: UInt64) throws -> [(seq: UInt64, tag: SubjectTag, opened: [PersonalStore.Opened])] {
        var out: [(seq: UInt64, tag: SubjectTag, opened: [PersonalStore.Opened])] = []
        while true {
            if next >= rows.count {
                guard let more = try store.rows(file: fileIndex) else { return out }
                fileIndex += 1
                rows = more
                next = 0
                continue
            }
            let r = rows[next]
            if r.seq > seq { return out }
            if r.seq == seq { out.append(r) }
            next += 1
        }
    }

    /// What the check needs of one entry, found off the serial path: its committed fields,
    /// and the subject it erases when it is an erasure record.
    public struct Prepared: Sendable {
        /// Its committed fields' groups; nil when they are not grouped as §5.4.1 says.
        var groups: [Personal.Group]?
        var erases: SubjectTag?
        var withholds: String?
    }

    /// `content`'s part in the check; nil when it commits to nothing and erases nothing.
    public static func prepare(_ content: [UInt8], action: String?) -> Prepared? {
        let erasure = action == Personal.erasureAction
        guard erasure || Personal.mayHoldCommitments(content), let v = try? Entry.decodeStored(content) else {
            return nil
        }
        var erases: SubjectTag?
        if erasure, v["category"]?.stringValue == "privacy" {
            erases = v["target"]?["id"]?.stringValue.flatMap(SubjectTag.init(text:))
        }
        let committed = Personal.commitments(in: v)
        return committed.isEmpty && erases == nil
            ? nil
            : Prepared(
                groups: Personal.groups(committed), erases: erases,
                withholds: erases == nil ? nil : v["metadata"]?["withheld_sha256"]?.stringValue)
    }

    /// Checks entry `seq`'s committed fields; returns what is wrong, or nil.
    public func check(seq: UInt64, _ p: Prepared) throws -> String? {
        if let t = p.erases { records[seq] = (t, p.withholds) }
        guard let groups = p.groups else {
            return
                "the entry's committed fields are not grouped as format-spec §5.4.1 says (a subject's fields under two commitments, or a field without its subject's)"
        }
        guard !groups.isEmpty else { return nil }
        let found = try rows(of: seq)
        let values = found.flatMap(\.opened)
        for g in groups {
            let keyless = found.contains { $0.tag == g.tag && $0.opened.isEmpty }
            let paths = g.paths.joined(separator: ", ")
            switch store.fate(of: g, opened: values, rowWithoutKey: keyless) {
            case .open: opened += g.paths.count
            case .erased:
                erased += g.paths.count
                erasedByTag[g.tag, default: 0] += g.paths.count
            case .mismatch:
                return
                    "the personal store's values of \(paths) do not open the entry's commitment (the store was altered)"
            case .keyGone:
                return
                    "the key of the subject of \(paths) is gone but no erasure of it is recorded (personal/subjects lost a key)"
            case .missing:
                return "the values of \(paths) are missing from the personal store and no erasure covers them"
            }
        }
        return nil
    }

    /// After the entries: each completed erasure must be the record it names. Records in
    /// segments that were not checked (archived) are listed in `unchecked`.
    public func finish(checkedBelow end: UInt64) -> (failure: String?, unchecked: [UInt64]) {
        var unchecked: [UInt64] = []
        for e in store.erasureRecords {
            guard e.recordSeq < end else {
                return ("personal/erasures names entry \(e.recordSeq) as an erasure record, beyond the log's end", [])
            }
            guard let (t, withholds) = records[e.recordSeq] else {
                unchecked.append(e.recordSeq)
                continue
            }
            // The entries it withholds must be the ones it signed: a list cut short shows
            // entries it withheld again.
            let held = store.withheld.entries(of: e.recordSeq)
            guard withholds == (held.isEmpty ? nil : Personal.withheldDigest(held)) else {
                return (
                    "erasure record \(e.recordSeq) withholds other entries than personal/withheld lists (\(held.count)): the list was altered or lost, so withheld entries may be shown",
                    []
                )
            }
            guard t == e.tag else {
                return (
                    "personal/erasures names entry \(e.recordSeq) as the erasure of subject \(e.tag.text)…, but that entry erased another subject",
                    []
                )
            }
        }
        for r in store.withheld.records where records[r] == nil && !unchecked.contains(r) {
            return ("personal/withheld names entry \(r) as an erasure record, but it is not one", [])
        }
        return (nil, unchecked)
    }
}
