import Foundation

/// A value shared between threads, read and changed under its own lock.
public final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var v: T

    /// A box holding `v`.
    public init(_ v: T) { self.v = v }

    /// The value now.
    public var value: T { lock.withLock { v } }

    /// Changes the value under the lock.
    public func mutate(_ f: (inout T) -> Void) { lock.withLock { f(&v) } }
}
