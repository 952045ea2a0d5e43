import AuditEntries
import AuditIndex

/// The orgs' chain positions as the checker walks the log, and where the current segment's
/// index file keeps each org's rows: one lookup of an org's name per entry finds both (a
/// dictionary of positions and another of rows hashed every name twice).
struct OrgTable {
    private var slots: [String: Int] = [:]
    private var names: [String] = []
    private var positions: [OrgPosition] = []
    /// Per slot, the index file's place for the org's rows (-1: it has none), valid while the
    /// slot's stamp is the current segment's.
    private var places: [Int32] = []
    private var stamps: [UInt32] = []
    private var segment: UInt32 = 1

    /// Orgs seen.
    var count: Int { names.count }

    /// The slot of `org`, if it has one.
    func slot(_ org: String) -> Int? { slots[org] }

    /// The position of the org in `slot`.
    func position(_ slot: Int) -> OrgPosition { positions[slot] }

    /// Sets the position of the org in `slot`.
    mutating func set(_ slot: Int, _ p: OrgPosition) { positions[slot] = p }

    /// A slot for `org`, which has none yet, at position `p`.
    mutating func add(_ org: String, _ p: OrgPosition) -> Int {
        let s = names.count
        slots[org] = s
        names.append(org)
        positions.append(p)
        places.append(-1)
        stamps.append(0)
        return s
    }

    /// The position of `org`, by name (nil: no entry of it seen); setting it adds the org.
    subscript(org: String) -> OrgPosition? {
        get { slots[org].map { positions[$0] } }
        set {
            guard let newValue else { return }
            if let s = slots[org] { positions[s] = newValue } else { _ = add(org, newValue) }
        }
    }

    /// Every org with its position.
    var all: some Sequence<(String, OrgPosition)> { zip(names, positions) }

    /// A new segment starts: the places noted for the last one's index file are forgotten.
    mutating func newSegment() { segment &+= 1 }

    /// The place noted for the org in `slot` in this segment's index file: nil when none was
    /// noted yet this segment, `.some(nil)` when the file has no rows for it.
    func place(_ slot: Int) -> Int?? {
        guard stamps[slot] == segment else { return nil }
        return .some(places[slot] < 0 ? nil : Int(places[slot]))
    }

    /// Notes the place of the org in `slot` in this segment's index file.
    mutating func note(_ slot: Int, place: Int?) {
        stamps[slot] = segment
        places[slot] = place.map { Int32(truncatingIfNeeded: $0) } ?? -1
    }
}
