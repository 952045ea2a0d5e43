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

    /// A text search turns down whole blocks the text is not in before reading their records
    /// (issue 22). Page by page, over sealed segments (blocks of one org and blocks shared by
    /// several), a rotated one and the open one, it finds exactly the entries whose bytes hold
    /// the text, in either case, and nothing of another org's that does.
    @Test func aSearchThatTurnsDownBlocksFindsExactlyWhatEveryEntryHolds() throws {
        let dir = temporaryDirectory("textsearch-blocks")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let l = try Ledger(directory: dir, signer: try Sample.signer(), options: Sample.options(rotateBytes: 8 << 10))
        defer { try? l.close() }
        func event(_ n: Int) -> PreparedEntry? {
            let org = n % 3 == 0 ? "org_b" : "org_a"
            // A few of org_a's and of org_b's hold the text, in mixed case; org_c's always do.
            let note = n % 29 == 0 ? "a NeedLe here" : n % 23 == 0 ? "needle" : n % 31 == 0 ? "needl" : "hay"
            let json =
                #"{"org":"\#(org)","category":"access","action":"access.granted","actor":{"type":"human","id":"u\#(n % 5)"},"target":{"type":"doc","id":"d\#(n)"},"outcome":"success","source":{"service":"svc"},"occurred_at":"2025-03-01T00:00:00.000Z","metadata":{"note":"\#(note)","n":\#(n)}}"#
            return try? Entry.prepare(
                json: Array(json.utf8), receivedAt: 1_740_787_200_000 + Int64(n),
                writer: Writer(uid: 0, gid: 0, via: "test"))
        }
        for round in 0..<14 {
            _ = try l.appendAndWait((0..<40).compactMap { event(round * 40 + $0) })
            try l.settle()
            if round < 11 { try l.store.sealRotated() }
        }
        #expect(l.segments().filter { $0.state == .sealed }.count >= 3)
        #expect(l.segments().contains { $0.state != .sealed })
        for (org, q) in [("org_a", "NEEDLE"), ("org_b", "needle"), ("org_a", "needl"), ("org_a", "nothing")] {
            let hits = try l.query(org: org, limit: 10_000)
            let want = try l.entries(seqs: hits.map(\.seq)).filter {
                TextMatch.containsByBytes($0.content, TextMatch.fold(q))
            }.map(\.seq)
            var got: [UInt64] = []
            var cursor: UInt64?
            repeat {
                let page = try l.search(org: org, text: q, limit: 3, cursor: cursor, budget: 50)
                got += page.entries.map(\.seq)
                #expect(page.entries.allSatisfy { $0.org == org })
                cursor = page.next
            } while cursor != nil
            #expect(got == want, "\(org) q=\(q)")
            #expect(q == "nothing" ? want.isEmpty : want.count >= 5, "\(org) q=\(q): \(want.count)")
        }
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
