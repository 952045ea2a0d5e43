import Foundation
import Testing

@testable import AuditIndex
@testable import ChainIndex

/// Time-range queries answer the same from sealed index files as from the in-memory index.
@Suite struct TimeRangeQueryTests {
    @Test(arguments: [false, true]) func entriesSharingMillisecondsAreFound(sealed: Bool) throws {
        let dir = temporaryDirectory("range-ms")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let l = try Ledger(directory: dir, signer: try Sample.signer(), options: Sample.options())
        let base: Int64 = 1_740_787_200_000
        for i in 0..<3000 {
            _ = try l.appendAndWait([
                try Sample.prepared(org: "org_\(i % 7)", i: i, at: base + Int64(i / 50) - Int64(i))
            ])
        }
        if sealed { try l.sealNow() }
        for from in [base, base + 10, base + 30, base + 59] {
            let want = (0..<3000).filter { $0 % 7 == 0 && base + Int64($0 / 50) >= from }.count
            let asc = try l.query(
                org: "org_0", filter: QueryFilter(from: from, to: base + 61), newestFirst: false, limit: 1000)
            #expect(asc.count == min(want, 1000), "sealed \(sealed) from +\(from - base): \(asc.count), want \(want)")
        }
        try l.close()
    }

    @Test(arguments: [false, true]) func aTimeRangeFindsTheOrgsEntriesSealedOrNot(sealed: Bool) throws {
        let dir = temporaryDirectory("range")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let l = try Ledger(directory: dir, signer: try Sample.signer(), options: Sample.options(rotateBytes: 16 << 10))
        let base: Int64 = 1_740_787_200_000
        for i in 0..<600 {
            _ = try l.appendAndWait([
                try Sample.prepared(org: "org_\(i % 3)", i: i, at: base + Int64(i) * 10 - Int64(i))
            ])
        }
        if sealed { try l.sealNow() }
        // org_0's entries are at base + 10*i for i divisible by 3.
        for (from, to) in [(base, base + 6_000), (base + 1_000, base + 2_000), (base + 2_995, base + 100_000)]
            as [(Int64, Int64)]
        {
            let want = (0..<600).filter { $0 % 3 == 0 && base + Int64($0) * 10 >= from && base + Int64($0) * 10 < to }
                .count
            let asc = try l.query(
                org: "org_0", filter: QueryFilter(from: from, to: to), newestFirst: false, limit: 1000)
            let desc = try l.query(
                org: "org_0", filter: QueryFilter(from: from, to: to), newestFirst: true, limit: 1000)
            #expect(
                asc.count == want && desc.count == want,
                "sealed \(sealed) [\(from - base), \(to - base)): asc \(asc.count), desc \(desc.count), want \(want)")
        }
        try l.close()
    }
}
