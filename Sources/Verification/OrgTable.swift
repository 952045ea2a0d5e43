import AuditEntries
import AuditIndex

/// The orgs' chain positions as the checker walks the log: one lookup of an org's name per
/// entry finds its slot, read and written.
struct OrgTable {
    private var slots: [String: Int] = [:]
    private var names: [String] = []
    private var positions: [OrgPosition] = []

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
}
