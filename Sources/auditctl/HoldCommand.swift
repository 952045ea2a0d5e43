import Archive
import ArgumentParser
import AuditEntries
import Foundation

/// `auditctl hold create|release|list`.
struct Hold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Legal holds: while one covers an org, none of its entries is purged.",
        subcommands: [Create.self, Release.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Place a hold on an org (optionally only entries received in a time range).")
        @Argument(help: "The data directory.") var dir: String
        @Option(help: "The org.") var org: String
        @Option(help: "Only entries received from (RFC 3339).") var from: String?
        @Option(help: "Only entries received before (RFC 3339).") var to: String?
        @Option(help: "Why.") var reason: String
        @Option(help: "Who ordered it.") var authority: String
        @Option(
            help:
                "The archive (a directory or s3://BUCKET[/PREFIX]): an object store also gets its own legal hold on every bundle the hold covers."
        ) var archive: String?
        @OptionGroup var trail: AuditTrailOptions

        func run() async throws {
            let change = try LegalHolds.prepareCreate(
                dir: dir, org: org, from: from, to: to, reason: reason, authority: authority, now: Date())
            let h = change.value
            var meta = ["reason": reason, "authority": authority]
            if let from { meta["from"] = from }
            if let to { meta["to"] = to }
            // The audit entry first: a hold that cannot be audited is not placed.
            let entries = try await trail.write(
                dir: dir,
                events: [
                    auditEvent(
                        org: org, category: "privacy", action: "legal_hold.initiated", targetType: "legal_hold",
                        targetId: h.id, metadata: meta)
                ])
            guard let e = entries.first else {
                throw CLIError("the log stored no entry for the hold; nothing was changed")
            }
            try change.commit(audit: EntryBinding(e))
            print(h.id)
            try Hold.mirror(dir: dir, archive: archive)
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release a hold.")
        @Argument(help: "The data directory.") var dir: String
        @Argument(help: "The hold id.") var id: String
        @Option(help: "Who released it.") var authority: String
        @Option(
            help: "The archive (a directory or s3://BUCKET[/PREFIX]): the object store's legal holds follow the log's.")
        var archive: String?
        @OptionGroup var trail: AuditTrailOptions

        func run() async throws {
            let change = try LegalHolds.prepareRelease(dir: dir, id: id, now: Date())
            let h = change.value
            // The audit entry first: a release that cannot be audited does not happen.
            let entries = try await trail.write(
                dir: dir,
                events: [
                    auditEvent(
                        org: h.org, category: "privacy", action: "legal_hold.released", targetType: "legal_hold",
                        targetId: h.id, metadata: ["authority": authority])
                ])
            guard let e = entries.first else {
                throw CLIError("the log stored no entry for the release; nothing was changed")
            }
            try change.commit(audit: EntryBinding(e))
            print("released \(h.id)")
            try Hold.mirror(dir: dir, archive: archive)
        }
    }

    /// The store's own legal holds made to follow the log's (placed where an active hold
    /// covers a bundle, lifted where none does).
    static func mirror(dir: String, archive: String?) throws {
        let backend = try ArchiveBackends.open(archive ?? LocalDirectoryBackend.defaultRoot(forData: dir), dataDir: dir)
        let n = try Archiver.mirrorLegalHolds(dataDir: dir, backend: backend)
        if n > 0 { print("the archive store's legal holds now follow the log's on \(n) bundle(s)") }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List holds.")
        @Argument(help: "The data directory.") var dir: String

        func run() throws {
            for h in try LegalHolds.load(dir: dir) {
                let range = (h.from ?? "…") + " – " + (h.to ?? "…")
                print(
                    "\(h.id)\t\(h.org)\t\(range)\t\(h.released_at.map { "released \($0)" } ?? "ACTIVE")\t\(h.reason) (\(h.authority))"
                )
            }
        }
    }
}
