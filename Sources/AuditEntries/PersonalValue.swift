import Foundation

/// How the rule of personal fields (`Personal.plan`) and their commitments read a value: as a
/// `String` (the general path), or as the entry's own bytes where they lie (the fast path,
/// whose strings are plain ASCII, so a span's bytes are its value): no string is made of a
/// value that is only hashed and sealed.
protocol PersonalValue {
    /// Whether the value is exactly `s` (the rule's type names).
    func equals(_ s: StaticString) -> Bool
    /// Whether two values are the same.
    func same(as other: Self) -> Bool
    /// The value as a string.
    var string: String { get }
    /// The value's UTF-8 bytes, for the length of `body`.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R
}

extension String: PersonalValue {
    func equals(_ s: StaticString) -> Bool {
        s.withUTF8Buffer { name in withBytes { $0.same(as: UnsafeRawBufferPointer(name)) } }
    }
    func same(as other: String) -> Bool { self == other }
    var string: String { self }
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        var s = self
        return s.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }
}

extension UnsafeRawBufferPointer: PersonalValue {
    func equals(_ s: StaticString) -> Bool { s.withUTF8Buffer { same(as: UnsafeRawBufferPointer($0)) } }
    func same(as other: UnsafeRawBufferPointer) -> Bool {
        guard count == other.count else { return false }
        guard let a = baseAddress, let b = other.baseAddress else { return count == 0 }
        return memcmp(a, b, count) == 0
    }
    var string: String { String(decoding: self, as: UTF8.self) }
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { body(self) }
}
