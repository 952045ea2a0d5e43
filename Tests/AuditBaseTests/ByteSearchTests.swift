import Testing

@testable import AuditBase

/// `contains(bytes:)` (glibc's memmem) against a plain search, at every place and length.
@Suite struct ByteSearchTests {
    @Test func findsANeedleWhereverItIsAndNothingElse() {
        let needle = Array(#""idempotency_key":""#.utf8)
        for len in [0, 1, 5, 18, 19, 40, 600] {
            let hay = [UInt8](repeating: 0x61, count: len)
            #expect(hay.contains(bytes: needle) == false, "\(len) bytes of filler")
            for at in stride(from: 0, through: max(0, len - needle.count), by: 7) where len >= needle.count {
                var h = hay
                h.replaceSubrange(at..<at + needle.count, with: needle)
                #expect(h.contains(bytes: needle), "at \(at) of \(len)")
                // One byte changed anywhere in it: no match.
                h[at + needle.count / 2] ^= 1
                #expect(h.contains(bytes: needle) == false, "altered at \(at) of \(len)")
            }
        }
        #expect([UInt8]().contains(bytes: []))
        #expect(Array("abc".utf8).contains(bytes: Array("abcd".utf8)) == false)
        #expect(ByteSearch.memmem != nil, "glibc's memmem was not found: the plain scan is in use")
    }

    /// `quoteOrBackslash` (eight bytes a step) against a byte loop: every position of a quote
    /// or a backslash among bytes that differ from them by one bit, at every start and end.
    @Test func quoteOrBackslashFindsTheFirstOfEither() {
        func plain(_ b: [UInt8], _ from: Int, _ end: Int) -> Int {
            var i = from
            while i < end, b[i] != 0x22, b[i] != 0x5C { i += 1 }
            return i
        }
        // Near misses of both characters (one bit off), high bytes and zeros around them.
        let filler: [UInt8] = [0x23, 0x21, 0x5D, 0x5B, 0xA2, 0xDC, 0x00, 0xFF, 0x61, 0x02, 0x1C, 0x7C]
        var rng = SystemRandomNumberGenerator()
        for len in 0..<40 {
            for _ in 0..<20 {
                var b = (0..<len).map { _ in filler.randomElement(using: &rng) ?? 0x61 }
                for _ in 0..<Int.random(in: 0...2, using: &rng) where len > 0 {
                    b[Int.random(in: 0..<len, using: &rng)] = Bool.random(using: &rng) ? 0x22 : 0x5C
                }
                for from in 0...len {
                    for end in from...len {
                        let got = b.withUnsafeBufferPointer { p in
                            p.baseAddress.map { ByteSearch.quoteOrBackslash($0, from: from, end: end) } ?? from
                        }
                        if got != plain(b, from, end) {
                            Issue.record("\(b) from \(from) to \(end): \(got), not \(plain(b, from, end))")
                        }
                    }
                }
            }
        }
    }

    /// `plainASCIIEnd` against a byte loop: every byte value (each one a plain string cannot
    /// hold as it is, and those beside them) at every position, at every start and end.
    @Test func plainASCIIEndFindsTheFirstByteAPlainStringCannotHold() {
        func plain(_ b: [UInt8], _ from: Int, _ end: Int) -> Int {
            var i = from
            while i < end, b[i] != 0x22, b[i] != 0x5C, b[i] >= 0x20, b[i] < 0x7F { i += 1 }
            return i
        }
        let printable: [UInt8] = [0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7E, 0x61, 0x41, 0x30]
        var rng = SystemRandomNumberGenerator()
        for len in 0..<24 {
            for stop in UInt8.min...UInt8.max {
                var b = (0..<len).map { _ in printable.randomElement(using: &rng) ?? 0x61 }
                if len > 0 { b[Int.random(in: 0..<len, using: &rng)] = stop }
                for from in 0...len {
                    for end in from...len {
                        let got = b.withUnsafeBufferPointer { p in
                            p.baseAddress.map { ByteSearch.plainASCIIEnd($0, from: from, end: end) } ?? from
                        }
                        if got != plain(b, from, end) {
                            Issue.record("\(b) from \(from) to \(end): \(got), not \(plain(b, from, end))")
                        }
                    }
                }
            }
        }
    }
}
