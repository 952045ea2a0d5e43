import AuditBase
import AuditIndex
import ChainIndex
import Foundation
import LogProofs
import SegmentStore

#if canImport(Glibc)
import Glibc
#endif

/// Whether a bundle may be purged, and why (not).
public struct PurgeDecision: Sendable, Equatable {
    /// The bundle.
    public var bundle: String
    /// Its segment.
    public var segment: UInt64
    /// True if every org in it is past retention and under no hold.
    public var eligible: Bool
    /// One line per org: kept until when, or held by which hold.
    public var reasons: [String]
    /// The orgs with entries in it.
    public var orgs: [ArchivedStub.OrgSummary]
}

/// Moves sealed segments into the archive tier, brings them back, and purges what retention
/// allows (format-spec.md §12). The clock is injectable so tests can let seven years pass.
public final class Archiver: @unchecked Sendable {
    /// The log.
    public let ledger: Ledger
    /// Where bundles go.
    public let backend: ArchiveBackend
    let clock: @Sendable () -> Date
    /// Test hook: seconds to pause between verifying the archived copy and retiring the hot
    /// files (set from `AUDITLOG_TEST_PAUSE_AFTER_COPY`), so a crash can be placed there.
    public var pauseAfterCopy: TimeInterval =
        ProcessInfo.processInfo.environment["AUDITLOG_TEST_PAUSE_AFTER_COPY"].flatMap(Double.init) ?? 0
    /// How long a restored segment stays in the hot tier before it may be archived again.
    public var restorePin: TimeInterval = 7 * 86400
    /// Held by a bundle's put (`putBundle`).
    private let putting = NSLock()

    /// An archiver for `ledger` into `backend`.
    public init(ledger: Ledger, backend: ArchiveBackend, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.ledger = ledger
        self.backend = backend
        self.clock = clock
    }

    /// Sealed hot segments whose newest entry was received more than `hotWindow` seconds ago,
    /// except those restored less than `restorePin` ago.
    public func candidates(hotWindow: TimeInterval) throws -> [SegmentInfo] {
        let now = clock()
        let cutoff = Int64((now.timeIntervalSince1970 - hotWindow) * 1000)
        return try ledger.segments().filter { info in
            guard info.state == .sealed, let (_, maxTime) = try ledger.timeRange(segment: info.segment),
                maxTime < cutoff
            else { return false }
            if let at = Self.restoredAt(segmentsDir: ledger.segmentsDirectory, segment: info.segment),
                now.timeIntervalSince(at) < restorePin
            {
                return false
            }
            return true
        }
    }

    /// When segment `n` was last restored into the hot tier, from `segments/N.restored`.
    public static func restoredAt(segmentsDir: String, segment n: UInt64) -> Date? {
        guard let d = (try? FileOps.readFile(segmentsDir + "/" + restoredMarker(n), limit: 4096)).map({ Data($0) }),
            let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
            let t = (o["restored_at"] as? String).flatMap(Timestamp.parse)
        else { return nil }
        return Date(timeIntervalSince1970: Double(t) / 1000)
    }

    /// `segments/N.restored`'s suffix.
    static let restoredSuffix = "restored"

    static func restoredMarker(_ n: UInt64) -> String {
        SegmentNames.digits(n) + "." + restoredSuffix
    }

    /// Archives every candidate, oldest first; returns the bundles made.
    @discardableResult
    public func run(hotWindow: TimeInterval, progress: ((Int, Int) -> Void)? = nil) throws -> [String] {
        let c = try candidates(hotWindow: hotWindow)
        var done: [String] = []
        for (i, info) in c.enumerated() {
            done.append(try archive(info))
            progress?(i + 1, c.count)
        }
        return done
    }

    /// Puts sealed segment `info`'s bundle into the archive unless it is there already, and
    /// returns its name; the hot copy stays in charge. Replication calls this at seal: the
    /// store checked every byte as it arrived (each request signs its payload's SHA-256), and
    /// `replicate` verifies the archived copy from scratch before anything relies on it alone.
    ///
    /// 1. build the bundle in a staging directory (every file fsync'd); 2. `put` it (atomic,
    /// committed last).
    ///
    /// One put at a time: the archiver's pass and replication both put bundles, and two puts of
    /// one segment's bundle both found it absent, built it, and the second failed as "already
    /// exists".
    @discardableResult
    public func putBundle(_ info: SegmentInfo) throws -> String {
        try putting.withLock { try putBundleAlone(info) }
    }

    private func putBundleAlone(_ info: SegmentInfo) throws -> String {
        guard info.state == .sealed else { throw AuditError("segment \(info.segment) is not a sealed hot segment") }
        let name = BundleFiles.name(info.segment)
        guard !(try backend.contains(bundle: name)) else { return name }
        let staging = try backend.stagingDirectory()
        do {
            let (manifest, _) = try ArchiveBundle.build(
                ledger: ledger, signer: SignerProxy(ledger: ledger), info: info,
                previous: try previousCheckpoint(before: info.segment),
                staging: staging, now: clock())
            let policy = try RetentionPolicy.load(dir: ledger.directory)
            try backend.put(bundle: name, from: staging, retainUntil: Self.retainUntil(manifest.orgs, policy: policy))
            let holds = try LegalHolds.load(dir: ledger.directory)
            if manifest.orgs.contains(where: { o in
                holds.contains { $0.covers(org: o.org, min: o.min_time, max: o.max_time) }
            }) {
                try backend.setLegalHold(bundle: name, on: true)
            }
        } catch {
            try? removeDirectory(staging)
            throw error
        }
        return name
    }

    /// `putBundle`, then 3. verify the archived copy from scratch. Returns its name, directory
    /// and manifest.
    @discardableResult
    public func replicate(_ info: SegmentInfo) throws -> (name: String, directory: String, manifest: BundleManifest) {
        let name = try putBundle(info)
        let dir = try backend.path(of: name)
        let manifest = try ArchiveBundle.verify(directory: dir, verifier: ledger.verifier)
        guard manifest.segment == info.segment, manifest.first_seq == info.firstSeq, manifest.end_seq == info.endSeq
        else {
            throw BundleError(file: dir, reason: "the archived bundle does not hold segment \(info.segment)")
        }
        return (name, dir, manifest)
    }

    /// Moves sealed segment `info` into the archive: `replicate` (a bundle already there is
    /// reused once it verifies), then 4. write the hot stub (temp, fsync, rename); 5. mark the
    /// segment archived; 6. remove the hot segment and index files and fsync their directories.
    /// A crash before 4 leaves the hot copy in charge; after 4 the verified archived copy is.
    public func archive(_ info: SegmentInfo) throws -> String {
        let (name, dir, manifest) = try replicate(info)
        if pauseAfterCopy > 0 { Thread.sleep(forTimeInterval: pauseAfterCopy) }
        let mbytes = try ArchiveFiles.read(dir + "/" + BundleFiles.manifest)
        let stub = ArchivedStub(
            segment: info.segment, first_seq: info.firstSeq, end_seq: info.endSeq, bundle: name,
            manifest_sha256: SHA256.hash(mbytes).hex,
            manifest_note: String(decoding: try ArchiveFiles.read(dir + "/" + BundleFiles.signature), as: UTF8.self),
            orgs: manifest.orgs, purged_at: nil, tombstone: nil, manifest: String(decoding: mbytes, as: UTF8.self))
        let segDir = ledger.segmentsDirectory
        try stub.save(segDir + "/" + ArchivedStub.fileName(info.segment))
        // The segment is being archived: whether it was restored before no longer matters.
        try FileOps.unlink(segDir + "/" + Self.restoredMarker(info.segment))
        try ledger.retire(
            stub.summary, marker: segDir + "/" + ArchivedStub.fileName(info.segment),
            hint: ArchivedStub.hint(bundle: name))
        return name
    }

    /// Makes the store's own legal holds follow the log's: on for every bundle in the store an
    /// active hold covers, off for the others: the archived ones (from their stubs) and those
    /// replication put there while their segments are still hot (from their manifests; one
    /// whose manifest cannot be read is held, to be safe). Returns the bundles it set (a store
    /// without holds of its own, a directory, sets none).
    @discardableResult
    public static func mirrorLegalHolds(dataDir: String, backend: ArchiveBackend) throws -> Int {
        guard let store = backend as? S3Backend else { return 0 }
        let holds = try LegalHolds.load(dir: dataDir)
        func held(_ orgs: [ArchivedStub.OrgSummary]) -> Bool {
            orgs.contains { o in holds.contains { $0.covers(org: o.org, min: o.min_time, max: o.max_time) } }
        }
        let segDir = DataDirectory(dataDir).segments
        var n = 0
        var archived: Set<String> = []
        for name in try FileOps.list(segDir).sorted() where name.hasSuffix(".archived") {
            guard let stub = try? ArchivedStub.load(segDir + "/" + name) else { continue }
            archived.insert(stub.bundle)
            guard stub.purged_at == nil else { continue }
            try backend.setLegalHold(bundle: stub.bundle, on: held(stub.orgs))
            n += 1
        }
        for name in try store.list() where !archived.contains(name) {
            let manifest = (try? store.manifest(of: name)).flatMap {
                try? JSONDecoder().decode(BundleManifest.self, from: Data($0))
            }
            try backend.setLegalHold(bundle: name, on: manifest.map { held($0.orgs) } ?? true)
            n += 1
        }
        return n
    }

    /// When the retention of the last of `orgs` ends (their newest entry plus their years).
    static func retainUntil(_ orgs: [ArchivedStub.OrgSummary], policy: RetentionPolicy) -> Date {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC") ?? cal.timeZone
        return orgs.map { o in
            cal.date(
                byAdding: .year, value: policy.years(for: o.org),
                to: Date(timeIntervalSince1970: Double(o.max_time) / 1000)) ?? .distantFuture
        }.max() ?? Date()
    }

    func previousCheckpoint(before segment: UInt64) throws -> (UInt64, UInt64)? {
        guard segment > 0, let bytes = try? backend.manifest(of: BundleFiles.name(segment - 1)),
            let m = try? JSONDecoder().decode(BundleManifest.self, from: Data(bytes))
        else { return nil }
        return (segment - 1, m.checkpoint_size)
    }

    /// What a purge would do now, under `policy` and `holds`.
    public func plan(policy: RetentionPolicy, holds: [LegalHold]) throws -> [PurgeDecision] {
        Self.plan(
            dataDir: ledger.directory, backend: backend, verifier: ledger.verifier, policy: policy, holds: holds,
            now: clock())
    }

    /// The orgs of archived segment `stub` as its bundle's signed manifest lists them, after
    /// checking the stub's signed note, that the manifest in the archive is the one it signs,
    /// and that the stub's copy of the org list agrees: a purge decides from signed data only,
    /// so editing a stub cannot lift a legal hold or shorten a retention.
    static func signedOrgs(
        _ stub: ArchivedStub, backend: ArchiveBackend, verifier: LogKeys
    ) throws -> [ArchivedStub.OrgSummary] {
        try stub.checkNote(verifier: verifier)
        let dir = try backend.path(of: stub.bundle)
        let bytes = try ArchiveFiles.read(dir + "/" + BundleFiles.manifest)
        guard SHA256.hash(bytes).hex == stub.manifest_sha256 else {
            throw AuditError("the manifest of \(stub.bundle) is not the one its stub's signed note names")
        }
        let manifest = try JSONDecoder().decode(BundleManifest.self, from: Data(bytes))
        guard manifest.segment == stub.segment, manifest.orgs == stub.orgs else {
            throw AuditError(
                "the stub of segment \(stub.segment) does not match its bundle's signed manifest (orgs or segment edited)"
            )
        }
        return manifest.orgs
    }

    /// What a purge would do at `now` (read-only; works beside a running daemon). Every
    /// decision is taken from the bundle's signed manifest; a stub that cannot be checked
    /// against it keeps its bundle, with the reason.
    public static func plan(
        dataDir: String, backend: ArchiveBackend, verifier: LogKeys, policy: RetentionPolicy, holds: [LegalHold],
        now: Date
    ) -> [PurgeDecision] {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC") ?? cal.timeZone
        var out: [PurgeDecision] = []
        let segDir = DataDirectory(dataDir).segments
        for name in ((try? FileOps.list(segDir)) ?? []).sorted() where name.hasSuffix(".archived") {
            guard let stub = try? ArchivedStub.load(segDir + "/" + name), stub.purged_at == nil else { continue }
            let orgs: [ArchivedStub.OrgSummary]
            do { orgs = try signedOrgs(stub, backend: backend, verifier: verifier) } catch {
                out.append(
                    PurgeDecision(
                        bundle: stub.bundle, segment: stub.segment, eligible: false,
                        reasons: ["cannot be checked against its signed manifest, so it is kept: \(error)"],
                        orgs: stub.orgs))
                continue
            }
            var eligible = true
            var reasons: [String] = []
            for o in orgs {
                let years = policy.years(for: o.org)
                let newest = Date(timeIntervalSince1970: Double(o.max_time) / 1000)
                let until = cal.date(byAdding: .year, value: years, to: newest) ?? .distantFuture
                let untilText = Timestamp.format(Int64(until.timeIntervalSince1970 * 1000))
                if let h = holds.first(where: { $0.covers(org: o.org, min: o.min_time, max: o.max_time) }) {
                    eligible = false
                    reasons.append("org \(o.org): under legal hold \(h.id) (\(h.reason); ordered by \(h.authority))")
                } else if now < until {
                    eligible = false
                    reasons.append("org \(o.org): kept \(years) years, until \(untilText)")
                } else {
                    reasons.append("org \(o.org): retention of \(years) years ended \(untilText)")
                }
            }
            // The store's own lock is a second, independent line: what it still keeps is not purged.
            if eligible, let until = try? backend.lockedUntil(bundle: stub.bundle), until > Date() {
                eligible = false
                reasons.append(
                    "the object store's Object Lock keeps it until \(Timestamp.format(Int64(until.timeIntervalSince1970 * 1000)))"
                )
            }
            out.append(
                PurgeDecision(
                    bundle: stub.bundle, segment: stub.segment, eligible: eligible, reasons: reasons, orgs: orgs))
        }
        return out
    }

    /// Purges every eligible bundle: 1. `audit` one entry per affected org (before anything
    /// goes: a purge that cannot be audited does not happen); then, per bundle, 2. sign a
    /// tombstone (the bundle's range, manifest hash, time); 3. record it in the hot stub
    /// (temp, fsync, rename); 4. remove the bundle from the archive. The tree's leaf hashes
    /// stay, so both chains and every checkpoint still verify across the gap. Returns what
    /// was purged.
    public func purge(
        policy: RetentionPolicy, holds: [LegalHold], audit: ([PurgeDecision]) throws -> Void
    ) throws -> [PurgeDecision] {
        let eligible = try plan(policy: policy, holds: holds).filter(\.eligible)
        if !eligible.isEmpty { try audit(eligible) }
        let segDir = ledger.segmentsDirectory
        var purged: [PurgeDecision] = []
        for var d in eligible {
            let path = segDir + "/" + ArchivedStub.fileName(d.segment)
            var stub = try ArchivedStub.load(path)
            let at = Timestamp.format(Int64(clock().timeIntervalSince1970 * 1000))
            stub.tombstone = try ledger.sign(
                ArchivedStub.tombstoneText(
                    origin: ledger.origin, segment: stub.segment, firstSeq: stub.first_seq,
                    endSeq: stub.end_seq, sha256: stub.manifest_sha256, purgedAt: at))
            stub.purged_at = at
            // The rows of purged entries go with them, unless a restore brought the segment
            // back to the hot tier (and was cut short before removing the stub).
            try ledger.purgeRows(stub.summary)
            try stub.save(path)
            ledger.retiredChanged(stub.summary)
            if (try? backend.path(of: stub.bundle)) != nil {
                // A store whose lock outlasts the log's rules refuses: expected, reported, not retried.
                do { try backend.remove(bundle: stub.bundle) } catch let refusal as ArchiveLockRefusal {
                    d.reasons.append("\(refusal)")
                }
            }
            purged.append(d)
        }
        return purged
    }

    /// Brings bundle `name` back into the hot tier of `dataDir` after verifying it completely
    /// (manifest signature, every file hash, every entry and both chains, the checkpoint root)
    /// and checking it is the very bundle the hot stub names. Works while auditd runs: it only
    /// writes files, which the daemon picks up.
    public static func restore(
        dataDir: String, backend: ArchiveBackend, verifier: LogKeys, bundle name: String
    ) throws -> BundleManifest {
        let dir = try backend.path(of: name)
        let manifest = try ArchiveBundle.verify(directory: dir, verifier: verifier)
        try BundlePlacement.check(name: name, dir: dir, manifest: manifest, dataDir: dataDir, verifier: verifier)
        let segDir = DataDirectory(dataDir).segments
        let stubPath = segDir + "/" + ArchivedStub.fileName(manifest.segment)
        let hotPath = segDir + "/" + SegmentNames.sealed(manifest.segment)
        if FileOps.exists(hotPath) { throw AuditError("segment \(manifest.segment) is already in the hot tier") }
        let stub = try ArchivedStub.load(stubPath)
        try stub.checkNote(verifier: verifier)
        guard stub.purged_at == nil else {
            throw AuditError("bundle \(name) was purged at \(stub.purged_at ?? "?"); only its tombstone remains")
        }
        let mbytes = try ArchiveFiles.read(dir + "/" + BundleFiles.manifest)
        guard SHA256.hash(mbytes).hex == stub.manifest_sha256 else {
            throw BundleError(
                file: dir + "/" + BundleFiles.manifest,
                reason: "is not the manifest the hot tier recorded for segment \(manifest.segment) (swapped bundle)")
        }
        // Index first, then the segment (its appearance is what makes the restore visible), then the stub goes.
        try FileOps.replaceFile(
            DataDirectory(dataDir).index + "/" + OrgIndex.fileName(manifest.segment),
            contents: try ArchiveFiles.read(dir + "/" + BundleFiles.index), mode: 0o440)
        let tmp = hotPath + ".restore"
        try FileOps.unlink(tmp)
        try FileOps.createFile(tmp, contents: try ArchiveFiles.read(dir + "/" + BundleFiles.segment), mode: 0o444)
        try FileOps.rename(tmp, hotPath)
        // Pin it in the hot tier for a while, or the next archiver pass would move it right back.
        let marker = "{\"restored_at\":\"\(Timestamp.format(Int64(Date().timeIntervalSince1970 * 1000)))\"}\n"
        try FileOps.replaceFile(segDir + "/" + restoredMarker(manifest.segment), contents: Array(marker.utf8))
        try FileOps.unlink(stubPath)
        try FileOps.fsyncDirectory(segDir)
        return manifest
    }

    func removeDirectory(_ p: String) throws {
        for f in (try? FileOps.list(p)) ?? [] { try FileOps.unlink(p + "/" + f) }
        _ = rmdir(p)
    }
}

/// Signs with the ledger's key without exposing it.
struct SignerProxy {
    let ledger: Ledger
    func sign(_ text: String) throws -> String { try ledger.sign(text) }
}
