#if canImport(Glibc)
import Glibc
#endif

/// Strings made from bytes, kept so that the same bytes give back the same String (a retain,
/// not an allocation, a copy and later a free): a direct-mapped table, where a new string takes
/// its slot. For a thread that makes the same few strings over and over (the verifier reads an
/// action and an actor out of every entry). Used by one thread at a time.
public final class StringInterner: @unchecked Sendable {
    private var slots: [String?]
    private let mask: Int

    /// A table of `slots` (rounded up to a power of two) strings.
    public init(slots: Int = 4096) {
        var n = 1
        while n < max(1, slots) { n <<= 1 }
        self.slots = [String?](repeating: nil, count: n)
        mask = n - 1
    }

    /// The string of the bytes of `a`, then `b`, then `c`.
    public func string(
        _ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8> = .init(start: nil, count: 0),
        _ c: UnsafeBufferPointer<UInt8> = .init(start: nil, count: 0)
    ) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        Self.fnv(&h, a)
        Self.fnv(&h, b)
        Self.fnv(&h, c)
        let total = a.count + b.count + c.count
        let i = Int(truncatingIfNeeded: h ^ (h >> 29)) & mask
        if var s = slots[i], s.utf8.count == total {
            let same = s.withUTF8 { u in
                Self.equal(u, 0, a) && Self.equal(u, a.count, b) && Self.equal(u, a.count + b.count, c)
            }
            if same { return s }
        }
        let s = Self.joined(a, b, c)
        slots[i] = s
        return s
    }

    /// FNV-1a over `p`, continuing `h` (a loop over indices: the buffer's iterator was a call
    /// per byte here).
    @inline(__always)
    private static func fnv(_ h: inout UInt64, _ p: UnsafeBufferPointer<UInt8>) {
        guard let base = p.baseAddress else { return }
        var k = 0
        while k < p.count {
            h = (h ^ UInt64(base[k])) &* 0x100_0000_01b3
            k += 1
        }
    }

    /// A new string of the bytes of `a`, then `b`, then `c`.
    public static func joined(
        _ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>, _ c: UnsafeBufferPointer<UInt8>
    ) -> String {
        String(unsafeUninitializedCapacity: a.count + b.count + c.count) { out in
            var k = 0
            func put(_ part: UnsafeBufferPointer<UInt8>) {
                for x in part {
                    out[k] = x
                    k += 1
                }
            }
            put(a)
            put(b)
            put(c)
            return k
        }
    }

    private static func equal(_ u: UnsafeBufferPointer<UInt8>, _ at: Int, _ p: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !p.isEmpty else { return true }
        guard let ub = u.baseAddress, let pb = p.baseAddress, at + p.count <= u.count else { return false }
        return memcmp(ub + at, pb, p.count) == 0
    }
}
