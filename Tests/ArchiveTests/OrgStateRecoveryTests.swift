import AuditBase
import Foundation
import LogProofs
import SegmentStore
import TestSupport
import Testing

@testable import Archive
@testable import AuditEntries
@testable import ChainIndex
@testable import Verification

/// Issue 7 A3: a missing or damaged org-state snapshot after segments were archived is
/// rebuilt from the stubs and index files; the tree is never cut below what archived
/// segments need.
@Suite(.serialized) struct OrgStateRecoveryTests {
    /// Segments 0–1 archived, 2 sealed in the hot tier, a few entries in the open segment.
    func logWithArchivedSegments() throws -> (root: String, data: String, signer: NoteSigner, size: UInt64) {
        let t = ArchiveTests()
        let (root, archiveDir, l, signer) = try t.makeLog()
        let archiver = Archiver(
            ledger: l, backend: try LocalDirectoryBackend(root: archiveDir),
            clock: { ArchiveTests.date("2023-01-01T00:00:00Z") })
        for seg in l.segments().filter({ $0.segment < 2 }) { _ = try archiver.archive(seg) }
        _ = try l.appendAndWait(try (0..<7).map { try Sample.entry(org: "org_d", i: $0) })
        try l.close()
        return (root, l.directory, signer, l.size)
    }

    func reopen(_ data: String, _ signer: NoteSigner) throws -> Ledger {
        var o = LedgerOptions()
        o.retired = ArchiveTier()
        o.background = false
        return try Ledger(directory: data, signer: signer, options: o)
    }

    func treeLeaves(_ data: String) -> Int { fileSize(DataDirectory(data).treeLeaves) / 32 }

    @Test(arguments: ["missing", "damaged", "empty"])
    func orgStateIsRebuiltFromStubsAndIndexFiles(how: String) throws {
        let (root, data, signer, size) = try logWithArchivedSegments()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = data + "/index/orgstate"
        switch how {
        case "missing": try FileManager.default.removeItem(atPath: path)
        case "damaged": try flipByte(path, at: 12)
        default: try shrink(path, to: 0)
        }
        let l = try reopen(data, signer)
        #expect(l.size == size)
        #expect(treeLeaves(data) == Int(size))
        // The chains continue where they were: a new entry of an org in the archived segments.
        let r = try l.appendAndWait([try Sample.entry(org: "org_a", i: 99)])
        #expect(r[0].orgSeq == 40)
        try l.close()
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(try Verifier(directory: data, key: LogKeys(signer.verifier)).run().ok)
    }

    @Test func aTreeCutBelowTheArchivedSegmentsIsRefusedNotCutFurther() throws {
        let (root, data, signer, _) = try logWithArchivedSegments()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.removeItem(atPath: data + "/index/orgstate")
        try shrink(DataDirectory(data).treeLeaves, to: 32 * 30)
        let e = #expect(throws: AuditError.self) { try reopen(data, signer) }
        #expect(e?.description.contains("archived segments need the first 80") == true, "\(e.map { "\($0)" } ?? "")")
        #expect(treeLeaves(data) == 30, "nothing more is cut")
    }

    @Test func aTreeCutInTheHotSegmentsIsRebuiltFromThem() throws {
        let (root, data, signer, size) = try logWithArchivedSegments()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try shrink(DataDirectory(data).treeLeaves, to: 32 * 90)
        let l = try reopen(data, signer)
        #expect(l.size == size)
        try l.close()
        #expect(try Verifier(directory: data, key: LogKeys(signer.verifier)).run().ok)
    }
}

enum Sample {
    static func entry(org: String, i: Int) throws -> PreparedEntry {
        let json =
            #"{"org":"\#(org)","category":"access","action":"access.granted","actor":{"type":"human","id":"u\#(i)"},"target":{"type":"p","id":"x\#(i)"},"outcome":"success","source":{"service":"svc"},"occurred_at":"2023-01-01T00:00:00Z","metadata":{}}"#
        return try Entry.prepare(
            json: Array(json.utf8), receivedAt: 1_672_531_200_000 + Int64(i),
            writer: Writer(uid: 0, gid: 0, via: "test"))
    }
}
