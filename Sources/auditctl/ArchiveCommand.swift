import Archive
import ArgumentParser
import AuditBase
import AuditEntries
import AuditIndex
import ChainIndex
import Foundation
import LogProofs
import SegmentStore

/// `auditctl archive list|verify|restore|run|purge`.
struct ArchiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "The seven-year archive tier: list, verify and restore bundles; archive and purge.",
        subcommands: [ListBundles.self, VerifyBundles.self, Restore.self, Run.self, Purge.self])

    struct Common: ParsableArguments {
        @Argument(help: "The data directory.") var dir: String
        @Option(
            help:
                "The archive: a directory, or s3://BUCKET[/PREFIX] (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3, AUDITLOG_S3_PATH_STYLE=1 or AUDITLOG_S3_CREDENTIALS=FILE). Default: <parent of DIR>/auditd-archive"
        ) var archive: String?
        var archivePath: String { archive ?? LocalDirectoryBackend.defaultRoot(forData: dir) }
    }

    struct ListBundles: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List archived and purged segments.")
        @OptionGroup var common: Common

        func run() throws {
            let seg = DataDirectory(common.dir).segments
            let present = Set((try? ArchiveBackends.open(common.archivePath, dataDir: common.dir).list()) ?? [])
            var n = 0
            for name in try FileOps.list(seg).sorted() where name.hasSuffix(".archived") {
                let s = try ArchivedStub.load(seg + "/" + name)
                let state =
                    s.purged_at.map { "purged \($0)" }
                    ?? (present.contains(s.bundle) ? "archived" : "MISSING from \(common.archivePath)")
                let times = s.orgs.map(\.min_time).min().map(Timestamp.format) ?? "-"
                print("\(s.bundle)\tseq \(s.first_seq)..<\(s.end_seq)\t\(s.orgs.count) orgs\tfrom \(times)\t\(state)")
                n += 1
            }
            if n == 0 { print("no archived segments in \(common.dir)") }
        }
    }

    struct VerifyBundles: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract:
                "Verify bundles: manifest signature, file hashes, every entry, the index and org summary, the checkpoint root; and that each is in its slot, matches its stub and holds the log's leaves."
        )
        @OptionGroup var common: Common
        @Option(help: "The verifier key (default: DIR's).") var key: String?
        @Argument(help: "Bundles (default: all).") var bundles: [String] = []

        func run() throws {
            let k =
                try key.map { try Ledger.keys(directory: common.dir, trusting: NoteVerifier($0)) }
                ?? Ledger.verifierKey(directory: common.dir)
            let backend = try ArchiveBackends.open(common.archivePath, dataDir: common.dir)
            let all = try backend.list()
            let names = bundles.isEmpty ? all : bundles
            var lost = 0
            if bundles.isEmpty {
                for s in try BundlePlacement.missing(dataDir: common.dir, present: Set(all)) {
                    print(
                        "FAILED: \(s.bundle): segment \(s.segment)'s stub records it, but \(common.archivePath) does not hold it"
                    )
                    lost += 1
                }
            }
            try eachBundle(names, label: "verifying bundles", failure: "FAILED") { name in
                let dir = try backend.path(of: name)
                let m = try ArchiveBundle.verify(directory: dir, verifier: k)
                try BundlePlacement.check(name: name, dir: dir, manifest: m, dataDir: common.dir, verifier: k)
                return "OK: \(name) (segment \(m.segment), entries \(m.first_seq)..<\(m.end_seq), \(m.orgs.count) orgs)"
            }
            if lost > 0 { throw ExitCode(1) }
        }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bring bundles back into the hot tier, after verifying each completely.",
            discussion:
                "Works while auditd runs: it picks restored segments up within its verify interval. A tampered or incomplete bundle is refused, naming the file and the reason."
        )
        @OptionGroup var common: Common
        @Flag(help: "Restore every archived (not purged) bundle.") var all = false
        @Argument(help: "Bundles to restore.") var bundles: [String] = []

        func run() throws {
            let k = try Ledger.verifierKey(directory: common.dir)
            let backend = try ArchiveBackends.open(common.archivePath, dataDir: common.dir)
            var names = bundles
            if all {
                names = try FileOps.list(DataDirectory(common.dir).segments).sorted().filter {
                    $0.hasSuffix(".archived")
                }.compactMap {
                    let s = try? ArchivedStub.load(DataDirectory(common.dir).segments + "/" + $0)
                    return s?.purged_at == nil ? s?.bundle : nil
                }
            }
            guard !names.isEmpty else {
                throw ValidationError("name the bundles to restore (see `auditctl archive list`), or pass --all")
            }
            try eachBundle(names, label: "restoring", failure: "REFUSED") { name in
                let m = try Archiver.restore(dataDir: common.dir, backend: backend, verifier: k, bundle: name)
                return "restored \(name): entries \(m.first_seq)..<\(m.end_seq)"
            }
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Archive sealed segments older than the hot window now (auditd does this on its own while it runs).")
        @OptionGroup var common: Common
        @Option(help: "Hot window, seconds.") var hotWindow: Double = 90 * 86400
        @Option(help: "Signing key. Default: <parent of DIR>/auditd-keys/<DIR name>.key") var key: String?
        @Option(help: "Pretend it is this time (RFC 3339), for rehearsals.") var now: String?

        func run() throws {
            let clock = try parseNow(now)
            let ledger = try openLedger(common.dir, key: key)
            let archiver = Archiver(
                ledger: ledger, backend: try ArchiveBackends.open(common.archivePath, dataDir: common.dir),
                clock: { clock })
            let bar = ProgressBar(label: "archiving")
            let made = try archiver.run(hotWindow: hotWindow) { bar.update(UInt64($0), UInt64($1)) }
            bar.finish()
            try ledger.close()
            print(
                made.isEmpty
                    ? "nothing is older than the hot window"
                    : "archived \(made.count) segments: \(made.joined(separator: ", "))")
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Remove bundles whose every org is past retention and under no legal hold, leaving signed tombstones.",
            discussion:
                "With --dry-run, shows what would go and why, without changing anything (works while auditd runs).")
        @OptionGroup var common: Common
        @Flag(help: "Only show the decisions.") var dryRun = false
        @Option(help: "Signing key.") var key: String?
        @Option(help: "Pretend it is this time (RFC 3339), for rehearsals.") var now: String?

        func run() async throws {
            let clock = try parseNow(now)
            let policy = try RetentionPolicy.load(dir: common.dir)
            let holds = try LegalHolds.load(dir: common.dir)
            if dryRun {
                let plan = Archiver.plan(
                    dataDir: common.dir, backend: try ArchiveBackends.open(common.archivePath, dataDir: common.dir),
                    verifier: try Ledger.verifierKey(directory: common.dir), policy: policy, holds: holds, now: clock)
                if plan.isEmpty { print("no archived bundles") }
                for d in plan {
                    print("\(d.eligible ? "WOULD PURGE" : "keep")\t\(d.bundle)")
                    for r in d.reasons { print("\t\(r)") }
                }
                return
            }
            let ledger = try openLedger(common.dir, key: key)
            // The holds and retention the purge obeys must be the ones the log recorded.
            let candidates = Archiver.plan(
                dataDir: common.dir, backend: try ArchiveBackends.open(common.archivePath, dataDir: common.dir),
                verifier: ledger.verifier, policy: policy, holds: holds, now: clock
            ).filter(\.eligible)
            let orgs = Set(candidates.flatMap { $0.orgs.map(\.org) })
            if !orgs.isEmpty {
                var entries: [[UInt8]] = []
                for org in orgs.sorted() {
                    for prefix in ["legal_hold.*", "retention.policy.*"] {
                        var cursor: UInt64?
                        repeat {
                            let (page, next) = try ledger.search(
                                org: org, filter: QueryFilter(action: prefix), newestFirst: false, limit: 1000,
                                cursor: cursor)
                            entries += page.map(\.content)
                            cursor = next
                        } while cursor != nil
                    }
                }
                let records = OperatorRecords(
                    dir: common.dir, entries: entries, since: try archivedUntil(ledger), orgs: orgs)
                if !records.failures.isEmpty {
                    try? ledger.close()
                    throw CLIError("nothing was purged: \(records.failures.joined(separator: "; "))")
                }
            }
            let archiver = Archiver(
                ledger: ledger, backend: try ArchiveBackends.open(common.archivePath, dataDir: common.dir),
                clock: { clock })
            let purged = try archiver.purge(policy: policy, holds: holds) { decisions in
                let now = ReceivedAt.now()
                var entries: [PreparedEntry] = []
                for d in decisions {
                    for o in d.orgs {
                        let e = auditEvent(
                            org: o.org, category: "privacy", action: "audit_log.purged", targetType: "archive_bundle",
                            targetId: d.bundle,
                            metadata: [
                                "entries": String(o.entries), "retention_years": String(policy.years(for: o.org)),
                                "segment": String(d.segment),
                            ])
                        entries.append(
                            try Entry.prepare(
                                json: Array(e.utf8), receivedAt: now,
                                writer: Writer(uid: getuid(), gid: getgid(), via: "auditctl"), keys: ledger.subjectKeys)
                        )
                    }
                }
                _ = try ledger.appendAndWait(entries)
            }
            try ledger.close()
            print(
                purged.isEmpty
                    ? "nothing is eligible for purge (see --dry-run)"
                    : "purged \(purged.count) bundles: \(purged.map(\.bundle).joined(separator: ", "))")
        }
    }
}

/// Runs `body` on each bundle with a progress bar, printing its line or the failure; exits 1
/// after all of them if any failed.
func eachBundle(_ names: [String], label: String, failure: String, _ body: (String) throws -> String) throws {
    let bar = ProgressBar(label: label)
    var failed = 0
    for (i, name) in names.enumerated() {
        do { print(try body(name)) } catch {
            failed += 1
            print("\(failure): \(name): \(error)")
        }
        bar.update(UInt64(i + 1), UInt64(names.count))
    }
    bar.finish()
    if failed > 0 { throw ExitCode(1) }
}

func parseNow(_ s: String?) throws -> Date {
    guard let s else { return Date() }
    guard let ms = Timestamp.parse(s) else { throw ValidationError("--now '\(s)' is not an RFC 3339 UTC time") }
    return Date(timeIntervalSince1970: Double(ms) / 1000)
}

func openLedger(_ dir: String, key: String?) throws -> Ledger {
    try openLogWithKey(
        dir, key: key,
        whenLocked: "\(dir) is held by a running auditd, which archives on its own; stop it to archive or purge by hand"
    )
}

/// The log of `dir` opened with its signing key (`key`, or the default beside the data), no
/// background threads: how auditctl writes when no daemon does. `whenLocked` is the error
/// when a daemon holds the directory.
func openLogWithKey(_ dir: String, key: String?, whenLocked: String) throws -> Ledger {
    let keyPath = key ?? DataDirectory(dir).defaultKey
    let (signer, _, note) = try Ledger.signingKey(at: keyPath, directory: dir)
    if let note { printError("auditctl: \(note)") }
    var o = LedgerOptions()
    o.retired = ArchiveTier()
    o.background = false
    o.signerState = SignerState.path(forKey: keyPath)
    do { return try Ledger(directory: dir, signer: signer, options: o) } catch let e as AuditError
        where e.code == .locked
    {
        throw CLIError(whenLocked)
    }
}

/// `auditctl retention set|show`.
struct Retention: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Per-org retention: seven years by default, extendable, never shorter.",
        subcommands: [Set.self, Show.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Extend an org's retention.")
        @Argument(help: "The data directory.") var dir: String
        @Option(help: "The org.") var org: String
        @Option(help: "Years (at least the default, at least its current value).") var years: Int
        @OptionGroup var trail: AuditTrailOptions

        func run() async throws {
            let change = try RetentionPolicy.prepareExtend(dir: dir, org: org, years: years)
            // The audit entry first: a change that cannot be audited does not happen.
            try await trail.write(
                dir: dir,
                events: [
                    auditEvent(
                        org: org, category: "monitoring", action: "retention.policy.changed",
                        targetType: "retention_policy", targetId: org, metadata: ["years": String(years)])
                ])
            try change.commit()
            print("org \(org) is kept \(years) years")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the retention policy.")
        @Argument(help: "The data directory.") var dir: String

        func run() throws {
            let p = try RetentionPolicy.load(dir: dir)
            print("default: \(p.default_years) years")
            for (o, y) in p.orgs.sorted(by: { $0.key < $1.key }) { print("\(o): \(y) years") }
        }
    }
}

/// The latest `received_at` of the archived segments, from their stubs' signed summaries.
func archivedUntil(_ ledger: Ledger) throws -> Int64? {
    try ledger.segments().filter { $0.state == .retired }.compactMap {
        try ArchivedStub.load($0.path).orgs.map(\.max_time).max()
    }.max()
}
