import Foundation
import LogProofs

@testable import AuditEntries
@testable import ChainIndex

enum Sample {
    static let categories = ["authentication", "access", "credentials", "files", "billing"]

    /// A valid event for `org` number `i`.
    static func json(
        org: String, i: Int, category: String? = nil, actor: String? = nil, outcome: String = "success"
    ) -> [UInt8] {
        let cat = category ?? categories[i % categories.count]
        return Array(
            #"{"org":"\#(org)","category":"\#(cat)","action":"\#(cat).act\#(i % 4)","actor":{"type":"human","id":"\#(actor ?? "usr_\(i % 7)")"},"target":{"type":"thing","id":"t\#(i)"},"outcome":"\#(outcome)","source":{"service":"svc"},"occurred_at":"2025-03-01T00:00:00.000Z","metadata":{"n":\#(i)}}"#
                .utf8)
    }

    static func prepared(
        org: String, i: Int, at ms: Int64 = 1_740_787_200_000, category: String? = nil, outcome: String = "success"
    ) throws -> PreparedEntry {
        try Entry.prepare(
            json: json(org: org, i: i, category: category, outcome: outcome), receivedAt: ms + Int64(i),
            writer: Writer(uid: 0, gid: 0, via: "test"))
    }

    static func signer() throws -> NoteSigner { try NoteSigner.generate(name: "audit.test/log") }

    /// A ledger without background threads, so tests decide when things happen.
    static func options(rotateBytes: Int = 32 << 20) -> LedgerOptions {
        var o = LedgerOptions()
        o.background = false
        o.store.rotateBytes = rotateBytes
        o.store.blockTarget = 4096
        return o
    }
}
