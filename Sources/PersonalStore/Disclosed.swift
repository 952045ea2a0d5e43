import AuditBase
import AuditEntries
import Foundation

/// What a reader may see of one committed field.
public struct Disclosed: Sendable, Equatable {
    /// What became of the value.
    public enum State: Sendable, Equatable {
        /// The value, whose opening matches the commitment.
        case open(nonce: [UInt8], value: String)
        /// Erased under a recorded authority.
        case erased(ErasureRecord)
        /// Not here (a replica, a log recovered from the bucket), or its row does not open
        /// the commitment (a damaged store: `auditctl verify` says which).
        case withheld(String)
    }

    /// The field's path.
    public var path: String
    /// The subject's tag.
    public var tag: SubjectTag
    /// Its state.
    public var state: State

    /// A field's disclosure.
    public init(path: String, tag: SubjectTag, state: State) {
        self.path = path
        self.tag = tag
        self.state = state
    }
}

extension PersonalStore {
    /// The committed fields of entry `seq` (canonical bytes `content`) as a reader may see
    /// them. Empty for an entry without commitments.
    public func disclose(seq: UInt64, content: [UInt8]) throws -> [Disclosed] {
        guard Personal.mayHoldCommitments(content), let v = try? Entry.decodeStored(content) else { return [] }
        let committed = Personal.commitments(in: v)
        guard !committed.isEmpty else { return [] }
        guard let groups = Personal.groups(committed) else {
            return committed.map {
                Disclosed(
                    path: $0.path, tag: $0.tag,
                    state: .withheld(
                        "the entry's commitments are not grouped as format-spec §5.4.1 says (run auditctl verify)"))
            }
        }
        let opened = try openings(seq: seq)
        return groups.flatMap { g -> [Disclosed] in
            let fate = fate(of: g, opened: opened)
            return g.paths.enumerated().map { i, path in
                let state: Disclosed.State
                switch fate {
                case .open(let o): state = .open(nonce: o[i].nonce, value: o[i].value)
                case .erased(let e): state = .erased(e)
                case .mismatch: state = .withheld("the stored value does not open its commitment (run auditctl verify)")
                case .keyGone, .missing: state = .withheld("its value is not in this copy of the log")
                }
                return Disclosed(path: path, tag: g.tag, state: state)
            }
        }
    }

    /// What became of a group of committed fields, given the opened fields of its entry's
    /// rows: the one rule readers (`disclose`) and `auditctl verify` share.
    public enum Fate {
        /// Its values, one per path of the group, which open the commitment.
        case open([Opened])
        /// Stored values that do not open it (or some of its fields without one).
        case mismatch
        /// Erased under a recorded erasure.
        case erased(ErasureRecord)
        /// Its row is there but its subject's key is gone, with no erasure recorded.
        case keyGone
        /// No value and no erasure.
        case missing
    }

    /// The fate of `g`; `rowWithoutKey` when a row of its subject is there but cannot be opened.
    public func fate(of g: Personal.Group, opened: [Opened], rowWithoutKey: Bool = false) -> Fate {
        let mine = g.paths.map { p in opened.first { $0.path == p && $0.tag == g.tag } }
        if mine.contains(where: { $0 != nil }) {
            let found = mine.compactMap { $0 }
            guard found.count == g.paths.count, let nonce = found.first?.nonce,
                found.allSatisfy({ $0.nonce == nonce }), g.opens(nonce: nonce, values: found.map(\.value))
            else { return .mismatch }
            return .open(found)
        }
        if let e = erasure(tag: g.tag) { return .erased(e) }
        return rowWithoutKey ? .keyGone : .missing
    }
}

extension Disclosed {
    /// The `personal` member of an entry as the read port, the feed and exports show it
    /// (format-spec.md §5.4.4), members in path order:
    /// `{"actor.id":{"nonce":"<hex>","value":"usr_1"},"source.ip":{"erased":{"entry":N,"authority":"…"}},
    ///   "target.name":{"withheld":"<why>"}}`; nil when the entry commits to nothing.
    public static func json(_ list: [Disclosed]) -> String? {
        guard !list.isEmpty else { return nil }
        let members = list.sorted { $0.path < $1.path }.map { d -> String in
            let v: String
            switch d.state {
            case .open(let nonce, let value):
                v = "{\"nonce\":\"\(nonce.hex)\",\"value\":\(CanonicalJSON.quoted(value))}"
            case .erased(let r):
                v = "{\"erased\":" + recordJSON(r) + "}"
            case .withheld(let why):
                v = "{\"withheld\":\(CanonicalJSON.quoted(why))}"
            }
            return CanonicalJSON.quoted(d.path) + ":" + v
        }
        return "{" + members.joined(separator: ",") + "}"
    }

    /// An erasure record as readers name it: `{"authority":"…","entry":N}` (a field's
    /// `erased`, a withheld entry's `withheld`).
    public static func recordJSON(_ r: ErasureRecord) -> String {
        "{\"authority\":\(CanonicalJSON.quoted(r.authority)),\"entry\":\(r.recordSeq)}"
    }
}
