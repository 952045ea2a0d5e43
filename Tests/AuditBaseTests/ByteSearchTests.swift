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
}
