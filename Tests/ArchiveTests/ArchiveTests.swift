import AuditBase
import AuditEntries
import AuditIndex
import ChainIndex
import Foundation
import LogProofs
import SegmentStore
import Testing
import Verification

@testable import Archive

/// The archive tier with an injected clock: years pass in a test.
@Suite(.serialized) struct ArchiveTests {
    static func date(_ s: String) -> Date { Date(timeIntervalSince1970: Double(Timestamp.parse(s) ?? 0) / 1000) }

    final class Clock: @unchecked Sendable {
        var now: Date
        init(_ s: String) { now = ArchiveTests.date(s) }
    }

    /// Three sealed segments: 0 (2020-01, org_a + org_b), 1 (2020-06, org_a + org_c), 2 (2022-01, org_b).
    /// With `personal`, the log commits personal fields (its actors are human).
    func makeLog(personal: Bool = false) throws -> (String, String, Ledger, NoteSigner) {
        let root = NSTemporaryDirectory() + "archive-\(UUID().uuidString.prefix(8))"
        let signer = try NoteSigner.generate(name: "audit.test/log")
        var o = LedgerOptions()
        o.retired = ArchiveTier()
        o.background = false
        if personal { o.protectPersonalFields = true }
        let l = try Ledger(directory: root + "/data", signer: signer, options: o)
        let plan: [(String, [String])] = [
            ("2020-01-01T00:00:00Z", ["org_a", "org_b"]), ("2020-06-01T00:00:00Z", ["org_a", "org_c"]),
            ("2022-01-01T00:00:00Z", ["org_b"]),
        ]
        for (k, (time, orgs)) in plan.enumerated() {
            let t = Timestamp.parse(time) ?? 0
            let batch = try (0..<40).map { i -> PreparedEntry in
                let org = orgs[i % orgs.count]
                let json =
                    #"{"org":"\#(org)","category":"access","action":"access.granted","actor":{"type":"human","id":"u\#(i)"},"target":{"type":"p","id":"p\#(k)-\#(i)"},"outcome":"success","source":{"service":"svc"},"occurred_at":"\#(time)","metadata":{"seg":\#(k)}}"#
                return try Entry.prepare(
                    json: Array(json.utf8), receivedAt: t + Int64(i), writer: Writer(uid: 0, gid: 0, via: "test"),
                    keys: l.subjectKeys)
            }
            _ = try l.appendAndWait(batch)
            try l.sealNow()
        }
        return (root, root + "/archive", l, signer)
    }

    @Test func sevenYearsPassAndOnlyEligibleBundlesArePurged() throws {
        let (root, archiveDir, l, signer) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let clock = Clock("2023-01-01T00:00:00Z")
        let c = clock
        let archiver = Archiver(ledger: l, backend: try LocalDirectoryBackend(root: archiveDir), clock: { c.now })
        #expect(try archiver.run(hotWindow: 30 * 86400).count == 3)
        #expect(l.segments().filter { $0.state == .retired }.count == 3)
        let dir = l.directory
        _ = try RetentionPolicy.extend(dir: dir, org: "org_c", years: 10)
        let hold = try LegalHolds.create(
            dir: dir, org: "org_b", from: nil, to: nil, reason: "litigation 2026-17", authority: "General Counsel",
            now: clock.now)
        var policy = try RetentionPolicy.load(dir: dir)

        clock.now = Self.date("2026-06-01T00:00:00Z")
        #expect(try archiver.plan(policy: policy, holds: try LegalHolds.load(dir: dir)).allSatisfy { !$0.eligible })

        clock.now = Self.date("2027-06-02T00:00:00Z")
        var plan = try archiver.plan(policy: policy, holds: try LegalHolds.load(dir: dir))
        #expect(plan.allSatisfy { !$0.eligible })
        #expect(plan[0].reasons.contains { $0.contains("legal hold \(hold.id)") })
        #expect(plan[1].reasons.contains { $0.contains("org org_c: kept 10 years") })
        var audited: [PurgeDecision] = []
        #expect(try archiver.purge(policy: policy, holds: try LegalHolds.load(dir: dir)) { audited += $0 }.isEmpty)

        _ = try LegalHolds.release(dir: dir, id: hold.id, now: clock.now)
        plan = try archiver.plan(policy: policy, holds: try LegalHolds.load(dir: dir))
        #expect(plan.map(\.eligible) == [true, false, false])
        let purged = try archiver.purge(policy: policy, holds: try LegalHolds.load(dir: dir)) { audited += $0 }
        #expect(purged.map(\.segment) == [0])
        #expect(audited.map(\.segment) == [0])
        #expect(!FileManager.default.fileExists(atPath: archiveDir + "/" + BundleFiles.name(0)))
        let stub = try ArchivedStub.load(DataDirectory(dir).segments + "/" + ArchivedStub.fileName(0))
        #expect(stub.purged_at != nil && stub.tombstone != nil)

        // The chain still verifies across the purged gap and the archived segments.
        try l.close()
        let report = try Verifier(directory: dir, key: LogKeys(signer.verifier)).run()
        #expect(report.ok, "\(report.failure?.description ?? "")")
        #expect(report.entries == 120)
        // A query says where the rest is.
        var o = LedgerOptions()
        o.retired = ArchiveTier()
        o.background = false
        let again = try Ledger(directory: dir, signer: signer, options: o)
        let ranges = again.archivedRanges(org: "org_a")
        #expect(ranges.map(\.segment) == [0, 1])
        #expect(ranges.map(\.purged) == [true, false])
        #expect(again.archivedRanges(org: "org_c").map(\.segment) == [1])
        let e = #expect(throws: AuditError.self) { try again.entry(seq: 45) }
        #expect(e?.code == .retired && e?.message.contains(BundleFiles.name(1)) == true)
        try again.close()

        // Ten years on, org_c's bundle goes too; org_b's 2022 bundle waits until 2029.
        clock.now = Self.date("2030-06-02T00:00:00Z")
        policy = try RetentionPolicy.load(dir: dir)
        #expect(
            Archiver.plan(
                dataDir: dir, backend: try LocalDirectoryBackend(root: archiveDir), verifier: LogKeys(signer.verifier),
                policy: policy, holds: [], now: clock.now
            ).map(\.eligible) == [true, true])
    }

    /// Personal values (format-spec.md §5.4.2) live as long as their entries: a purge at the
    /// end of retention takes the purged entries' rows out of the personal store; archived
    /// entries that are not purged keep theirs (a restore shows them again).
    @Test func aPurgeTakesThePurgedEntriesPersonalValuesWithThem() throws {
        let (root, archiveDir, l, signer) = try makeLog(personal: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let clock = Clock("2023-01-01T00:00:00Z")
        let c = clock
        let archiver = Archiver(ledger: l, backend: try LocalDirectoryBackend(root: archiveDir), clock: { c.now })
        #expect(try archiver.run(hotWindow: 30 * 86400).count == 3)
        func rows() throws -> [UInt64] {
            var out: [UInt64] = []
            var i = 0
            while let f = try l.personal.rows(file: i) {
                out += f.map(\.seq)
                i += 1
            }
            return out
        }
        #expect(Set(try rows()) == Set(0..<120))
        #expect(try l.personal.openings(seq: 5).map(\.value) == ["u5"])
        clock.now = Self.date("2027-06-02T00:00:00Z")
        let purged = try archiver.purge(policy: try RetentionPolicy.load(dir: l.directory), holds: []) { _ in }
        #expect(purged.map(\.segment) == [0, 1])
        #expect(Set(try rows()) == Set(80..<120))
        #expect(try l.personal.openings(seq: 5).isEmpty)
        #expect(try l.personal.openings(seq: 85).map(\.value) == ["u5"])
        // The log still verifies, its store with it.
        try l.close()
        let report = try Verifier(directory: l.directory, key: LogKeys(signer.verifier)).run()
        #expect(report.ok, "\(report.failure?.description ?? "")")
    }

    @Test func anArchivedSegmentIsRestoredAndQueriedAgain() throws {
        let (root, archiveDir, l, signer) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let backend = try LocalDirectoryBackend(root: archiveDir)
        let archiver = Archiver(ledger: l, backend: backend, clock: { ArchiveTests.date("2023-01-01T00:00:00Z") })
        let seg1 = try #require(l.segments().first { $0.segment == 1 })
        let before = try l.entries(seqs: [seg1.firstSeq, seg1.firstSeq + 5])
        let name = try archiver.archive(seg1)
        #expect(!FileManager.default.fileExists(atPath: seg1.path))
        #expect(throws: AuditError.self) { try l.entry(seq: seg1.firstSeq) }
        #expect(try l.search(org: "org_c", limit: 100).entries.isEmpty)
        #expect(l.archivedRanges(org: "org_c").map(\.bundle) == [name])

        let m = try Archiver.restore(
            dataDir: l.directory, backend: backend, verifier: LogKeys(signer.verifier), bundle: name)
        #expect(m.segment == 1)
        try l.store.reinstateReturned()
        try l.index.refreshRestored(l.segments())
        #expect(try l.entries(seqs: [seg1.firstSeq, seg1.firstSeq + 5]) == before)
        #expect(try l.search(org: "org_c", limit: 100).entries.count == 20)
        try l.close()
        #expect(try Verifier(directory: l.directory, key: LogKeys(signer.verifier)).run().ok)
    }

    /// A page read while the archiver retires a segment (the store stops reading it a moment
    /// before the index is told) does not fail: the search runs again, and the index, told by
    /// then, answers without the segment. (CI run 240 at 674e23f: the read port answered 500.)
    @Test func aSearchThatMeetsARetirementUnderWayReadsThePageAgain() throws {
        let (root, _, l, _) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let seg1 = try #require(l.segments().first { $0.segment == 1 })
        #expect(try l.search(org: "org_c", limit: 100).entries.count == 20)
        // The store retires the segment now; the index is told 50 ms later, as if the archiver
        // were between the two steps of `Ledger.retire`.
        try l.store.retire(seg1.segment, path: seg1.path + ".archived", label: "bundle-t", hint: "a test")
        let summary = RetiredSummary(
            segment: seg1.segment, firstSeq: seg1.firstSeq, endSeq: seg1.endSeq, label: "bundle-t", purged: false,
            orgs: [], manifest: nil, manifestNote: "")
        let index = l.index
        let told = Thread {
            Thread.sleep(forTimeInterval: 0.05)
            index.addArchived(summary)
        }
        told.start()
        #expect(try l.search(org: "org_c", limit: 100).entries.isEmpty)
        // Another org's page holds its entries of the other segments, none of the retired one.
        let others = try l.search(org: "org_a", limit: 100).entries.map(\.seq)
        #expect(!others.isEmpty && others.allSatisfy { !(seg1.firstSeq..<seg1.endSeq).contains($0) })
    }

    func archivedBundles() throws -> (String, Ledger, NoteSigner, LocalDirectoryBackend, [String]) {
        let (root, archiveDir, l, signer) = try makeLog()
        let backend = try LocalDirectoryBackend(root: archiveDir)
        let names = try Archiver(ledger: l, backend: backend, clock: { ArchiveTests.date("2023-01-01T00:00:00Z") }).run(
            hotWindow: 0)
        try l.close()
        return (root, l, signer, backend, names)
    }

    func refusal(_ l: Ledger, _ backend: LocalDirectoryBackend, _ signer: NoteSigner, _ name: String) -> String? {
        do {
            _ = try Archiver.restore(
                dataDir: l.directory, backend: backend, verifier: LogKeys(signer.verifier), bundle: name)
            return nil
        } catch { return "\(error)" }
    }

    @Test func flippedByteInABundleIsRefusedOnRestore() throws {
        let (root, l, signer, backend, names) = try archivedBundles()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let p = try backend.path(of: names[1]) + "/" + BundleFiles.segment
        _ = chmod(p, 0o644)
        var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        b[200] ^= 0x20
        try Data(b).write(to: URL(fileURLWithPath: p))
        let why = try #require(refusal(l, backend, signer, names[1]))
        #expect(why.contains(BundleFiles.segment) && why.contains("SHA-256"), "\(why)")
        #expect(
            !FileManager.default.fileExists(atPath: DataDirectory(l.directory).segments + "/" + SegmentNames.sealed(1)))
    }

    @Test func missingFileInABundleIsRefusedOnRestore() throws {
        let (root, l, signer, backend, names) = try archivedBundles()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.removeItem(atPath: try backend.path(of: names[0]) + "/" + BundleFiles.index)
        let why = try #require(refusal(l, backend, signer, names[0]))
        #expect(why.contains(BundleFiles.index), "\(why)")
    }

    @Test func swappedManifestIsRefusedOnRestore() throws {
        let (root, l, signer, backend, names) = try archivedBundles()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let a = try backend.path(of: names[0])
        let b = try backend.path(of: names[2])
        for f in [BundleFiles.manifest, BundleFiles.signature] {
            _ = chmod(b + "/" + f, 0o644)
            try FileManager.default.removeItem(atPath: b + "/" + f)
            try FileManager.default.copyItem(atPath: a + "/" + f, toPath: b + "/" + f)
        }
        let why = try #require(refusal(l, backend, signer, names[2]))
        #expect(why.contains("SHA-256") || why.contains("manifest"), "\(why)")
        #expect(
            !FileManager.default.fileExists(atPath: DataDirectory(l.directory).segments + "/" + SegmentNames.sealed(2)))
    }

    @Test func retentionIsNeverShortened() throws {
        let dir = NSTemporaryDirectory() + "ret-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: AuditError.self) { try RetentionPolicy.extend(dir: dir, org: "org_a", years: 5) }
        #expect(try RetentionPolicy.extend(dir: dir, org: "org_a", years: 10).years(for: "org_a") == 10)
        #expect(throws: AuditError.self) { try RetentionPolicy.extend(dir: dir, org: "org_a", years: 8) }
        #expect(try RetentionPolicy.load(dir: dir).years(for: "org_b") == 7)
    }
}

/// Issue 7 C12: a purge decides from signed data, and writes its audit entries first.
@Suite(.serialized) struct PurgeFromSignedDataTests {
    func archived() throws -> (String, String, Ledger, NoteSigner, Archiver) {
        let (root, archiveDir, l, signer) = try ArchiveTests().makeLog()
        let clock = ArchiveTests.Clock("2023-01-01T00:00:00Z")
        let c = clock
        let archiver = Archiver(ledger: l, backend: try LocalDirectoryBackend(root: archiveDir), clock: { c.now })
        #expect(try archiver.run(hotWindow: 30 * 86400).count == 3)
        clock.now = ArchiveTests.date("2040-01-01T00:00:00Z")
        return (root, archiveDir, l, signer, archiver)
    }

    @Test func editingAStubCannotLiftALegalHold() throws {
        let (root, archiveDir, l, _, archiver) = try archived()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try LegalHolds.create(
            dir: l.directory, org: "org_b", from: nil, to: nil, reason: "litigation", authority: "GC", now: Date())
        // The attacker drops org_b from segment 0's stub (org_a + org_b).
        let path = DataDirectory(l.directory).segments + "/" + ArchivedStub.fileName(0)
        var stub = try ArchivedStub.load(path)
        stub.orgs.removeAll { $0.org == "org_b" }
        try stub.save(path)
        let plan = try archiver.plan(policy: RetentionPolicy(), holds: try LegalHolds.load(dir: l.directory))
        let d0 = try #require(plan.first { $0.segment == 0 })
        #expect(!d0.eligible)
        #expect(d0.reasons.joined().contains("signed manifest"), "\(d0.reasons)")
        _ = try archiver.purge(policy: RetentionPolicy(), holds: try LegalHolds.load(dir: l.directory)) { _ in }
        #expect(
            FileManager.default.fileExists(atPath: archiveDir + "/" + BundleFiles.name(0)),
            "the held bundle is still there")
        try l.close()
    }

    @Test func aPurgeThatCannotBeAuditedRemovesNothing() throws {
        let (root, archiveDir, l, _, archiver) = try archived()
        defer { try? FileManager.default.removeItem(atPath: root) }
        struct AuditFailed: Error {}
        #expect(throws: AuditFailed.self) {
            _ = try archiver.purge(policy: RetentionPolicy(), holds: []) { _ in throw AuditFailed() }
        }
        for n in 0..<3 as Range<UInt64> {
            #expect(FileManager.default.fileExists(atPath: archiveDir + "/" + BundleFiles.name(n)))
            #expect(
                try ArchivedStub.load(DataDirectory(l.directory).segments + "/" + ArchivedStub.fileName(n)).purged_at
                    == nil)
        }
        try l.close()
    }
}
