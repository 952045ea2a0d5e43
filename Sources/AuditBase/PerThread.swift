import Foundation

/// One object per thread, made on its first use there and released when the thread ends: for
/// state that every event loop touches on each entry (a cipher context, a pool of random
/// bytes), where one lock shared by all of them cost more than the work it guarded.
public final class PerThread<Value: AnyObject>: @unchecked Sendable {
    private var key = pthread_key_t()
    private let make: @Sendable () -> Value?

    /// `make` is called once per thread; nil (it could not make one) is retried on the next use.
    public init(_ make: @escaping @Sendable () -> Value?) {
        self.make = make
        pthread_key_create(&key) { p in
            if let p { Unmanaged<AnyObject>.fromOpaque(p).release() }
        }
    }

    /// This thread's object.
    public var value: Value? {
        if let p = pthread_getspecific(key) {
            return Unmanaged<Value>.fromOpaque(p).takeUnretainedValue()
        }
        guard let v = make() else { return nil }
        pthread_setspecific(key, Unmanaged.passRetained(v).toOpaque())
        return v
    }

    /// `body` of this thread's object (nil: none could be made), which is neither retained nor
    /// released for it: on a path taken every entry by two event loops at once, each retain
    /// writes the object's header, and two threads' objects allocated side by side share a
    /// cache line (`auditbench append --prepare-only --prepare-threads 2`).
    public func withValue<R, E: Error>(_ body: (Value?) throws(E) -> R) throws(E) -> R {
        guard let p = pthread_getspecific(key) else {
            guard let v = make() else { return try body(nil) }
            pthread_setspecific(key, Unmanaged.passRetained(v).toOpaque())
            return try body(v)
        }
        // The thread's reference (released only when the thread ends) keeps it alive.
        let result: Result<R, E> = Unmanaged<Value>.fromOpaque(p)._withUnsafeGuaranteedRef { v in
            do throws(E) { return .success(try body(v)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}

/// 128 bytes that nothing writes: the last stored property of a per-thread object that is
/// written on every use, so that no other thread's object allocated after it shares its
/// cache lines (two lines: some processors fetch lines in pairs).
public struct CacheLinePadding: Sendable {
    private var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    private var more: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)

    /// Padding.
    public init() {}
}
