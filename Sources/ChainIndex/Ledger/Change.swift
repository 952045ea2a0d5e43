/// A change to an operator's file (tokens, holds, retention), checked and ready but not yet
/// written: the caller writes its audit entry first, then commits, so that no change can take
/// effect without its entry in the log (and a failed audit changes nothing).
public struct Change<Value>: Sendable where Value: Sendable {
    /// What the change makes (the new token, hold or policy).
    public let value: Value
    private let write: @Sendable () throws -> Void

    /// A change making `value` once `write` runs.
    public init(_ value: Value, write: @escaping @Sendable () throws -> Void) {
        self.value = value
        self.write = write
    }

    /// Writes the change durably.
    public func commit() throws { try write() }
}
