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
}
