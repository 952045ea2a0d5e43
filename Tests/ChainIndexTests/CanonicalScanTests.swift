import Testing

@testable import AuditEntries

/// `CanonicalScan.topLevelString`, which skips strings with `memchr`, answers exactly what the
/// byte loop it replaced did (kept here as the reference), on canonical entries and on bytes
/// bent from them: escapes, backslash runs before quotes, nesting, cut-off input.
@Suite struct CanonicalScanTests {
    /// The scan before 2026-12-06: one byte at a time.
    static func reference(_ c: [UInt8], key: String) -> String? {
        let k = Array(("\"" + key + "\":\"").utf8)
        var depth = 0
        var i = 0
        var inString = false
        let n = c.count
        while i < n {
            let ch = c[i]
            if inString {
                if ch == 0x5C {
                    i += 2
                    continue
                }
                if ch == 0x22 { inString = false }
                i += 1
                continue
            }
            switch ch {
            case 0x7B, 0x5B: depth += 1
            case 0x7D, 0x5D: depth -= 1
            case 0x22:
                if depth == 1, i + k.count <= n, c[i..<i + k.count].elementsEqual(k), i > 0,
                    c[i - 1] == 0x7B || c[i - 1] == 0x2C
                {
                    var j = i + k.count
                    let start = j
                    while j < n, c[j] != 0x22 {
                        if c[j] == 0x5C { return nil }
                        j += 1
                    }
                    return String(decoding: c[start..<j], as: UTF8.self)
                }
                inString = true
            default: break
            }
            i += 1
        }
        return nil
    }

    static let seeds = [
        #"{"action":"user.login","actor":{"id":"u1","org":"not-this","type":"human"},"category":"authentication","metadata":{"org":"nor-this","q":"a\"b\\"},"occurred_at":"2026-12-06T10:00:00Z","org":"acme","outcome":"success","received_at":"2026-12-06T10:00:00.123Z"}"#,
        #"{"a":"\\","org":"x\"y","b":["org",{"org":"z"}],"org":"late"}"#,
        #"{"note":"ends in \\\\","org":"o1"}"#,
        #"{"note":"\\\"org\":\"fake","org":"real"}"#,
        #"{"org":"first","org":"second"}"#,
        #"{"org":{"org":"inner"},"x":"org"}"#,
    ].map { Array($0.utf8) }

    @Test func theMemchrScanAgreesWithTheByteLoopOnEveryInputTried() {
        let alphabet = Array(#"{}[]":,\org ax"#.utf8)
        var rng = XorShift(x: 0x2545_F491_4F6C_DD1D)
        func next(_ k: Int) -> Int { rng.next(k) }
        var disagreements: [String] = []
        var found = 0
        for round in 0..<100_000 {
            var s = Self.seeds[next(Self.seeds.count)]
            if round > 0 {
                for _ in 0...next(4) {
                    let at = next(s.count + 1)
                    switch next(4) {
                    case 0: s.insert(alphabet[next(alphabet.count)], at: at)
                    case 1: if at < s.count { s.remove(at: at) }
                    case 2: s = Array(s.prefix(at))
                    default: if at < s.count { s[at] = alphabet[next(alphabet.count)] }
                    }
                }
            }
            for key in ["org", "action", "note", "a"] {
                let want = Self.reference(s, key: key)
                if want != nil { found += 1 }
                if CanonicalScan.topLevelString(s, key: key) != want {
                    disagreements.append("\(key) in \(String(decoding: s, as: UTF8.self))")
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
        // The inputs reach both answers: members found, and members missing or refused.
        #expect(found > 20_000 && found < 380_000, "found \(found)")
    }

    @Test func theSeedsGiveTheTopLevelMember() {
        // The second: the first top-level "org" holds an escape, which refuses (no later one is sought).
        let want: [String?] = ["acme", nil, "o1", "real", "first", nil]
        for (s, w) in zip(Self.seeds, want) {
            #expect(CanonicalScan.topLevelString(s, key: "org") == w, "\(String(decoding: s, as: UTF8.self))")
        }
    }
}
