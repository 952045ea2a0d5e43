import Foundation
import TestSupport
import Testing

@testable import AuditEntries
@testable import ChainIndex

/// Issue 18 item 19: free text folds ASCII letters only, as format-spec §9.3 says, in the read
/// port's search and in the export check alike.
@Suite struct TextSearchTests {
    @Test(arguments: [("zoë", true), ("ZOë", true), ("Zo", true), ("ZOË", false), ("zoe", false)])
    func onlyASCIILettersAreFolded(_ q: String, _ found: Bool) throws {
        let dir = temporaryDirectory("textsearch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let l = try Ledger(directory: dir, signer: try Sample.signer(), options: Sample.options())
        defer { try? l.close() }
        let json =
            #"{"org":"org_a","category":"access","action":"access.granted","actor":{"type":"human","id":"u1","name":"Zoë"},"target":{"type":"doc","id":"d1"},"outcome":"success","source":{"service":"svc"},"occurred_at":"2025-03-01T00:00:00.000Z"}"#
        _ = try l.appendAndWait([
            try Entry.prepare(
                json: Array(json.utf8), receivedAt: 1_740_787_200_000, writer: Writer(uid: 0, gid: 0, via: "test"))
        ])
        #expect(try l.search(org: "org_a", text: q).entries.count == (found ? 1 : 0), "q=\(q)")
        #expect(TextMatch.contains(Array(json.utf8), TextMatch.fold(q)) == found)
    }

    /// The folded memmem search answers exactly as the byte-by-byte comparison it replaced, on
    /// random bytes biased towards letters of both cases, `@`, `[`, `` ` `` and `{` (the bytes
    /// beside A-Z and a-z), and non-ASCII.
    @Test func theFoldedSearchAnswersAsTheByteComparisonDid() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("aAbBzZ@[`{ \u{C3}\u{AB}09".utf8)
        func random(_ n: Int) -> [UInt8] { (0..<n).map { _ in alphabet.randomElement(using: &rng)! } }
        var found = 0
        for _ in 0..<20_000 {
            let hay = random(Int.random(in: 0...40, using: &rng))
            var needle = TextMatch.fold(String(decoding: random(Int.random(in: 0...4, using: &rng)), as: UTF8.self))
            // Half the time, a piece of the hay itself (in either case), so that matches occur.
            if Bool.random(using: &rng), hay.count > 2 {
                let a = Int.random(in: 0..<hay.count - 1, using: &rng)
                needle = TextMatch.fold(String(decoding: hay[a..<min(hay.count, a + 3)], as: UTF8.self))
            }
            let want = TextMatch.containsByBytes(hay, needle)
            #expect(TextMatch.contains(hay, needle) == want, "\(hay) \(needle)")
            if want { found += 1 }
        }
        #expect(found > 5_000)
    }
}
