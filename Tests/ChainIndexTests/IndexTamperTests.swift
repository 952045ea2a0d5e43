import AuditBase
import Foundation
import Testing

@testable import AuditIndex
@testable import ChainIndex
@testable import SegmentStore

/// Index files and the org-state snapshot are derived data, checked as such (format-spec.md
/// §10 items 6 and 8): rewritten with valid checksums, flipped, or pointed at another org's
/// entry, they are caught by `verify`, and a query never shows another org's entry for them.
@Suite struct IndexTamperTests {
    let tamper = TamperTests()

    func indexPath(_ dir: String, _ n: UInt64) -> String { DataDirectory(dir).index + "/" + OrgIndex.fileName(n) }

    /// Rewrites index file `n` (valid checksums) after `edit` of its rows.
    func forgeIndex(_ dir: String, _ n: UInt64, _ edit: (inout [(String, [IndexHit])]) -> Void) throws {
        let path = indexPath(dir, n)
        let idx = try SealedIndex(path: path)
        var byOrg = try idx.dir.keys.sorted().map { ($0, try idx.hits(org: $0)) }
        edit(&byOrg)
        _ = chmod(path, 0o644)
        try FileManager.default.removeItem(atPath: path)
        try SealedIndex.write(
            path: path, segment: idx.segment, firstSeq: idx.firstSeq, endSeq: idx.endSeq, byOrg: byOrg)
    }

    /// For each case, a fresh log whose index file 1 is forged by the edit: `verify` refuses it
    /// with a message holding the case's text, naming that file.
    func expectRefused(_ cases: [(String, (inout [(String, [IndexHit])]) -> Void)]) throws {
        for (message, edit) in cases {
            let (dir, s) = try tamper.makeLog()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try forgeIndex(dir, 1, edit)
            let f = try #require(try tamper.verify(dir, s), "\(message)")
            #expect(f.path == indexPath(dir, 1) && f.message.contains(message), "\(f)")
        }
    }

    @Test func aRowRewrittenToHideAnEntryFromAFilterIsCaught() throws {
        let (dir, s) = try tamper.makeLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try forgeIndex(dir, 1) { byOrg in
            byOrg[0].1[3].fields.outcome = byOrg[0].1[3].fields.outcome == .denied ? .success : .denied
        }
        let f = try #require(try tamper.verify(dir, s))
        #expect(f.path == indexPath(dir, 1) && f.message.contains("index row of entry"), "\(f)")
    }

    /// Rows and orgs missing from an index file, or added to it, are each named: the rows are
    /// compared with the entries as the entries are checked; a file with more rows than the
    /// segment has entries, or a section larger than its rows can be, is refused unread.
    @Test func aRowOrAnOrgMissingOrAddedIsCaught() throws {
        let cases: [(String, (inout [(String, [IndexHit])]) -> Void)] = [
            ("index file has 39 rows for org org_0, the segment more entries", { $0[0].1.removeLast() }),
            ("index file lists no entries of org org_2", { $0.removeLast() }),
            // Forged to cost memory: refused before anything is decoded.
            (
                "index file lists more rows than its segment has entries (120)",
                { byOrg in byOrg[1].1.append(byOrg[1].1[39]) }
            ),
            (
                "index section of org org_9 is",
                { byOrg in
                    var row = byOrg[0].1[0]
                    row.fields.action = String(repeating: "a", count: 5_000)
                    byOrg[2] = ("org_9", [row])
                }
            ),
        ]
        try expectRefused(cases)
    }

    @Test func aRowPointingAtAnotherOrgsEntryIsDamageNotAnAnswer() throws {
        let (dir, s) = try tamper.makeLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // org_0's section lists one of org_1's entries in place of its own.
        var stolen: UInt64 = 0
        try forgeIndex(dir, 1) { byOrg in
            stolen = byOrg[1].1[0].seq
            byOrg[0].1[0].seq = stolen
            byOrg[0].1.sort { $0.seq < $1.seq }
        }
        #expect(try tamper.verify(dir, s) != nil)
        // Queries read the posting lists: without them, the next start derives them from the
        // forged index file.
        try FileManager.default.removeItem(atPath: dir + "/index/orgs")
        let l = try Ledger(directory: dir, signer: s, options: Sample.options())
        defer { try? l.close() }
        #expect(throws: AuditError.self) { _ = try l.search(org: "org_0", limit: 1000) }
        // The other org's entry is never handed out, under any filter.
        let seen =
            (try? l.search(org: "org_0", filter: QueryFilter(category: .init(rawValue: "access")), limit: 1000).entries)
            ?? []
        #expect(!seen.contains { $0.seq == stolen || $0.org != "org_0" })
    }

    /// Rows are placed by the entry they name when the file is read (the comparison runs on
    /// every core, each entry finding its row by number): a row under the wrong org, or two
    /// rows for one entry, are named as such.
    @Test func aRowUnderAnotherOrgOrTwoRowsForOneEntryAreNamed() throws {
        let cases: [(String, (inout [(String, [IndexHit])]) -> Void)] = [
            // org_0's and org_1's first rows swap entries (each section still in order).
            (
                "under org org_1, but it is an entry of org org_0",
                { byOrg in
                    let (a, b) = (byOrg[0].1[0].seq, byOrg[1].1[0].seq)
                    byOrg[0].1[0].seq = b
                    byOrg[1].1[0].seq = a
                }
            ),
            // org_1's first entry listed by org_0 as well.
            (
                "twice (under org org_0 and org org_1)",
                { byOrg in
                    byOrg[0].1[0].seq = byOrg[1].1[0].seq
                    byOrg[0].1.sort { $0.seq < $1.seq }
                }
            ),
        ]
        try expectRefused(cases)
    }

    @Test func aFlippedByteInAnIndexFileOrTheOrgStateIsCaught() throws {
        for target in ["index", "orgstate"] {
            let (dir, s) = try tamper.makeLog()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = target == "index" ? indexPath(dir, 0) : dir + "/index/orgstate"
            _ = chmod(path, 0o644)
            let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
            try flipByte(path, at: size / 2, mask: 0x01)
            let f = try #require(try tamper.verify(dir, s), "\(target)")
            #expect(f.path == path, "\(target): \(f)")
        }
    }
}
