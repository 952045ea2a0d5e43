/// A seeded xorshift64 generator: the differential tests' inputs, the same on every run.
struct XorShift {
    var x: UInt64

    /// A number in `0..<k`.
    mutating func next(_ k: Int) -> Int {
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
        return Int(x % UInt64(k))
    }
}
