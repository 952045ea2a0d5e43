/// A change to an operator's file (tokens, holds, retention), checked and ready but not yet
/// written: the caller writes its audit entry first, then commits, so that no change can take
/// effect without its entry in the log (and a failed audit changes nothing). A change whose
/// record carries its entry (format-spec.md §1) is committed with that entry's binding.
public struct Change<Value>: Sendable where Value: Sendable {
    /// What the change makes (the new token, hold or policy).
    public let value: Value
    private let write: @Sendable (EntryBinding?) throws -> Void

    /// A change making `value` once `write` runs.
    public init(_ value: Value, write: @escaping @Sendable () throws -> Void) {
        self.value = value
        self.write = { _ in try write() }
    }

    /// A change making `value` once `write` runs with the binding of its audit entry.
    public init(_ value: Value, bound write: @escaping @Sendable (EntryBinding?) throws -> Void) {
        self.value = value
        self.write = write
    }

    /// Writes the change durably (without its entry's binding: tests and tools of the files alone).
    public func commit() throws { try write(nil) }

    /// Writes the change durably, its record carrying `audit`, the entry that recorded it.
    public func commit(audit: EntryBinding) throws { try write(audit) }
}
