import Testing

@testable import AuditEntries

/// `source.ip`'s IPv4 check (format-spec.md §4) read in place: it accepts and refuses exactly
/// what the split-based form it replaced did, kept here as the reference. (Text with a colon
/// goes to the IPv6 check, unchanged, on both sides.)
@Suite struct IPAddressTests {
    /// The IPv4 check before 2026-12-06: split on dots, then each part on its own.
    static func referenceIPv4(_ b: ArraySlice<UInt8>) -> Bool {
        let parts = b.split(separator: 0x2E, omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        for p in parts {
            guard (1...3).contains(p.count), p.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
            if p.count > 1 && p.first == 0x30 { return false }
            guard p.reduce(0, { $0 * 10 + Int($1 - 0x30) }) <= 255 else { return false }
        }
        return true
    }

    static func reference(_ text: [UInt8]) -> Bool {
        text.contains(0x3A) ? IPAddress.isIPv6(text[...]) : referenceIPv4(text[...])
    }

    @Test func theInPlaceCheckAgreesWithTheSplitOneOnEveryInputTried() {
        // Valid addresses, bent one byte at a time, and strings from the addresses' alphabet.
        let seeds = [
            "0.0.0.0", "255.255.255.255", "192.0.2.1", "10.0.0.1", "1.2.3.4", "99.100.249.250", "::ffff:192.0.2.1",
            "64:ff9b::192.0.2.33", "::1",
        ].map { Array($0.utf8) }
        let alphabet = Array("0123456789.:abf".utf8)
        var rng = XorShift(x: 0x9E37_79B9_7F4A_7C15)
        func next(_ k: Int) -> Int { rng.next(k) }
        var disagreements: [String] = []
        var accepted = 0
        for round in 0..<200_000 {
            var s: [UInt8]
            if round % 2 == 0 {
                s = seeds[next(seeds.count)]
                for _ in 0...next(3) {
                    let at = next(s.count + 1)
                    switch next(3) {
                    case 0: s.insert(alphabet[next(alphabet.count)], at: at)
                    case 1: if at < s.count { s.remove(at: at) }
                    default: if at < s.count { s[at] = alphabet[next(alphabet.count)] }
                    }
                }
            } else {
                s = (0..<next(18)).map { _ in alphabet[next(12)] }
            }
            let want = Self.reference(s)
            if want { accepted += 1 }
            if IPAddress.isValid(s) != want || IPAddress.isValid(s[...]) != want {
                disagreements.append(String(decoding: s, as: UTF8.self))
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(10))")
        // The inputs reached both answers, so the agreement means something.
        #expect(accepted > 1000 && accepted < 150_000, "\(accepted) accepted")
        for (ip, ok) in [
            ("0.0.0.0", true), ("255.255.255.255", true), ("256.0.0.1", false), ("1.2.3.04", false),
            ("1.2.3.", false), (".1.2.3", false), ("1..2.3", false), ("1.2.3.4.", false), ("1234.1.1.1", false),
            ("", false), ("0.0.0.00", false),
        ] {
            #expect(IPAddress.isValid(Array(ip.utf8)) == ok, "\(ip)")
        }
    }
}
