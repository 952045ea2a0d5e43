import Archive
import AuditBase
import Foundation
import LogProofs
import SegmentStore
import Testing

@testable import AuditIndex

/// Bundles are bound to their slots, their stubs and their log (format-spec.md §12.1, §12.3),
/// and a stub's org summary is checked against the signed manifest: each tamper below is
/// made on real artifacts (an import, `archive run`) and refused by name.
@Suite(.serialized) struct BundleBindingTests {
    let cli = ArchiveCLITests()

    /// A log of ~4 segments, all archived.
    func archived() throws -> (root: String, data: String, archive: String) {
        let (root, data) = try cli.makeLog()
        let archive = root + "/archive"
        let (s, out) = try cli.ctl(["archive", "run", data, "--archive", archive, "--hot-window", "0"])
        guard s == 0 else { throw ArchiveCLITests.CLIFailed(out) }
        return (root, data, archive)
    }

    func stubPath(_ data: String, _ n: UInt64) -> String {
        DataDirectory(data).segments + "/" + ArchivedStub.fileName(n)
    }

    /// Rewrites stub `n` with `edit` applied to its JSON object.
    func editStub(_ data: String, _ n: UInt64, _ edit: (inout [String: Any]) -> Void) throws {
        let path = stubPath(data, n)
        var o =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
            ?? [:]
        edit(&o)
        try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
    }

    @Test func aRaisedOrgCountInAStubIsCaughtByVerify() throws {
        for (field, delta) in [("count_after", 5), ("entries", 2)] {
            let (root, data, archive) = try archived()
            defer { try? FileManager.default.removeItem(atPath: root) }
            var (s, out) = try cli.ctl(["verify", data, "--quiet"])
            #expect(s == 0, "\(out)")
            // The last archived segment: the org may have no entry after it to contradict it.
            let last =
                try FileManager.default.contentsOfDirectory(atPath: DataDirectory(data).segments).filter {
                    $0.hasSuffix(".archived")
                }.count - 1
            try editStub(data, UInt64(last)) { o in
                var orgs = o["orgs"] as? [[String: Any]] ?? []
                orgs[0][field] = (orgs[0][field] as? Int ?? 0) + delta
                o["orgs"] = orgs
            }
            (s, out) = try cli.ctl(["verify", data, "--quiet"])
            #expect(s == 1 && out.contains("differs from its signed manifest"), "\(field): \(out)")
            (s, out) = try cli.ctl(["archive", "verify", data, "--archive", archive])
            #expect(s == 1 && out.contains("FAILED"), "\(field): \(out)")
        }
    }

    @Test func anEditedManifestCopyInAStubIsCaught() throws {
        let (root, data, _) = try archived()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try editStub(data, 0) { o in
            o["manifest"] = (o["manifest"] as? String ?? "") + " "
        }
        let (s, out) = try cli.ctl(["verify", data, "--quiet"])
        #expect(s == 1 && out.contains("not the signed one"), "\(out)")
    }

    @Test func aBundleInAnotherSegmentsSlotIsRefused() throws {
        let (root, data, archive) = try archived()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var (s, out) = try cli.ctl(["archive", "verify", data, "--archive", archive])
        #expect(s == 0 && !out.contains("FAILED"), "\(out)")
        // Segment 1's slot holds segment 0's bundle (each verifies on its own).
        let fm = FileManager.default
        let one = archive + "/" + BundleFiles.name(1)
        let zero = archive + "/" + BundleFiles.name(0)
        try fm.removeItem(atPath: one)
        try fm.copyItem(atPath: zero, toPath: one)
        (s, out) = try cli.ctl(["archive", "verify", data, "--archive", archive])
        #expect(s == 1 && out.contains("FAILED: \(BundleFiles.name(1))") && out.contains("moved or swapped"), "\(out)")
        (s, out) = try cli.ctl(["archive", "restore", data, "--archive", archive, BundleFiles.name(1)])
        #expect(s != 0 && out.contains("moved or swapped"), "\(out)")
        // A bundle gone from the archive while its stub still points to it.
        try fm.removeItem(atPath: one)
        (s, out) = try cli.ctl(["archive", "verify", data, "--archive", archive])
        #expect(s == 1 && out.contains("does not hold it"), "\(out)")
    }

    @Test func aBundleFromAnotherLogUnderTheSameKeyIsRefused() throws {
        // A bundle that verifies (under its own key) is still not another log's: its leaves are
        // compared with the tree of the log it is checked against.
        let (root, data, archive) = try archived()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (root2, data2) = try cli.makeLog()
        defer { try? FileManager.default.removeItem(atPath: root2) }
        var (s, out) = try cli.ctl(["archive", "verify", data, "--archive", archive])
        #expect(s == 0, "\(out)")
        let key = try KeyFile.load(path: DataDirectory(data).defaultKey)
        let m = try ArchiveBundle.verify(
            directory: archive + "/" + BundleFiles.name(0), verifier: LogKeys(key.verifier))
        #expect(throws: Never.self) {
            try BundlePlacement.check(
                name: BundleFiles.name(0), dir: archive + "/" + BundleFiles.name(0), manifest: m, dataDir: data,
                verifier: LogKeys(key.verifier))
        }
        #expect(throws: BundleError.self) {
            try BundlePlacement.check(
                name: BundleFiles.name(0), dir: archive + "/" + BundleFiles.name(0), manifest: m, dataDir: data2,
                verifier: LogKeys(key.verifier))
        }
        (s, out) = try cli.ctl(["verify", data, "--quiet"])
        #expect(s == 0, "\(out)")
    }

    /// Issue 18 item 18: a stub without its manifest (§12.3 still reads those) whose org's
    /// `max_time` was moved a year later, in the stub and in its posting-list record (CRC
    /// fixed), so that the two agree. The entries after it were then received before the
    /// stub's claimed end, which §5.1 rules out: verify must say so.
    @Test func aManifestLessStubWithAMovedTimeIsCaught() throws {
        let (root, data, _) = try archived()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var (s, out) = try cli.ctl(["verify", data, "--quiet"])
        #expect(s == 0, "\(out)")
        let year: Int64 = 365 * 86_400_000
        var org = ""
        var moved: Int64 = 0
        try editStub(data, 0) { o in
            o["manifest"] = nil
            var orgs = o["orgs"] as? [[String: Any]] ?? []
            org = orgs[0]["org"] as? String ?? ""
            moved = (orgs[0]["max_time"] as? NSNumber)?.int64Value ?? 0
            moved += year
            orgs[0]["max_time"] = NSNumber(value: moved)
            o["orgs"] = orgs
        }
        // The org's posting-list record of segment 0: maxTime at bytes 52-59, recordCrc over 0-75.
        let pld = data + "/index/orgs/" + PostingLists.stem(org) + ".pld"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: pld)))
        #expect(bytes.count >= 80 && bytes[0..<8].allSatisfy { $0 == 0 }, "segment 0's record comes first")
        var v = UInt64(bitPattern: moved)
        for i in 0..<8 {
            bytes[52 + i] = UInt8(truncatingIfNeeded: v)
            v >>= 8
        }
        var crc = CRC32C.checksum(bytes[0..<76])
        for i in 0..<4 {
            bytes[76 + i] = UInt8(truncatingIfNeeded: crc)
            crc >>= 8
        }
        try Data(bytes).write(to: URL(fileURLWithPath: pld))
        (s, out) = try cli.ctl(["verify", data, "--quiet"])
        #expect(s == 1 && out.contains("received_at never decreases"), "\(out)")
    }
}
