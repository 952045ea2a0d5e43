import AuditEntries
import AuditIndex

/// The orgs' chain positions as the checker walks the log, and the index rows each org's
/// entries of the current segment call for: one lookup of an org's name per entry finds both
/// (a dictionary of positions and another of rows hashed every name twice).
struct OrgTable {
    private var slots: [String: Int] = [:]
    private var names: [String] = []
    private var positions: [OrgPosition] = []
    private var rows: [[IndexHit]] = []
    /// Slots with rows in the current segment.
    private var touched: [Int] = []

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
        rows.append([])
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

    /// Adds a row the current segment's index file must hold for the org in `slot`.
    mutating func addRow(_ slot: Int, _ hit: consuming IndexHit) {
        if rows[slot].isEmpty { touched.append(slot) }
        rows[slot].append(hit)
    }

    /// The current segment's rows, by org.
    var segmentRows: [String: [IndexHit]] {
        var out: [String: [IndexHit]] = [:]
        out.reserveCapacity(touched.count)
        for s in touched { out[names[s]] = rows[s] }
        return out
    }

    /// Forgets the current segment's rows (a new segment starts).
    mutating func clearRows() {
        for s in touched { rows[s].removeAll(keepingCapacity: true) }
        touched.removeAll(keepingCapacity: true)
    }
}
