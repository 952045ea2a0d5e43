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
}
