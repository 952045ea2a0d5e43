import Archive
import ArgumentParser
import AuditAccess
import AuditBase
import AuditClient
import AuditEntries
import ChainIndex
import Foundation
import LogProofs
import SegmentStore

#if canImport(Glibc)
import Glibc
#endif

/// `auditctl token create|list|revoke`: read-port bearer tokens.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and revoke read-port tokens (stored hashed in DIR/tokens.json).",
        discussion:
            "Every change is itself written into the log (category access) through the daemon's socket, or directly when no daemon runs.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token for one org (or --operator) and print it once.")
        @Argument(help: "The data directory.") var dir: String
        @Option(help: "The org this token may read.") var org: String?
        @Flag(help: "Operator scope: may read every org.") var `operator` = false
        @Option(help: "A label for the token.") var label = ""
        @Option(
            help:
                "How long the token works: a number with s, m, h or d (90d, 12h); recorded in its audit entry. Default: until revoked."
        ) var ttl: String?
        @OptionGroup var trail: AuditTrailOptions

        func run() async throws {
            guard (org != nil) != `operator` else {
                throw ValidationError("give exactly one of --org ORG or --operator")
            }
            if let org, !Entry.isValidOrgName(org) {
                throw ValidationError("--org '\(org)' is not an org name (1–64 of [A-Za-z0-9_.:@/-])")
            }
            guard FileManager.default.fileExists(atPath: DataDirectory(dir).info) else {
                throw CLIError("\(dir) is not an audit log directory")
            }
            let lifetime = try ttl.map { t -> Int64 in
                guard let ms = Self.milliseconds(t), ms > 0, ms <= TokenStore.maxTTL else {
                    throw ValidationError(
                        "--ttl '\(t)' is not a lifetime from 1s to 3650d (a number with s, m, h or d: 90d, 12h, 30m)")
                }
                return ms
            }
            var rec = try TokenStore.make(org: org, label: label, ttl: lifetime)
            // The audit entry first: a token whose creation cannot be audited is never stored.
            // The record carries that entry, bound to its leaf (format-spec.md §1).
            let entry = try await auditTokenChange(dir: dir, trail: trail, record: rec, action: "audit.token.created")
            rec.audit = EntryBinding(entry)
            try TokenStore.add(rec, path: TokenStore.path(forData: dir))
            print(rec.secret ?? "")
            printError(
                "token \(rec.id) for \(org.map { "org \($0)" } ?? "operator scope") created\(rec.expires_at.map { ", valid until \($0)" } ?? ""); it is shown only now"
            )
        }

        /// `90d`, `12h`, `30m`, `45s` (or a bare number of seconds) in milliseconds; nil if it
        /// is none of these or would overflow.
        static func milliseconds(_ text: String) -> Int64? {
            let units: [Character: Int64] = ["s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]
            let unit = text.last.flatMap { units[$0] }
            guard let n = Int64(unit == nil ? Substring(text) : text.dropLast()), n > 0 else { return nil }
            let (ms, overflow) = n.multipliedReportingOverflow(by: unit ?? 1000)
            return overflow ? nil : ms
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")
        @Argument(help: "The data directory.") var dir: String

        func run() throws {
            for r in try TokenStore.load(path: TokenStore.path(forData: dir)) {
                print(
                    "\(r.id)\t\(r.org ?? "(operator)")\t\(r.revoked_at.map { "revoked \($0)" } ?? "active")\tcreated \(r.created_at)\t\(r.expires_at.map { "expires \($0)" } ?? "no expiry")\t\(r.label)"
                )
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a token by id (takes effect on the next request).")
        @Argument(help: "The data directory.") var dir: String
        @Argument(help: "The token id.") var id: String
        @OptionGroup var trail: AuditTrailOptions

        func run() async throws {
            let change = try TokenStore.prepareRevoke(path: TokenStore.path(forData: dir), id: id)
            // The audit entry first: a revocation that cannot be audited does not happen.
            try await auditTokenChange(dir: dir, trail: trail, record: change.value, action: "audit.token.revoked")
            try change.commit()
            print("revoked \(change.value.id)")
        }
    }
}

/// Writes a token change into the log (through the daemon if one serves `socket`, else
/// directly) and returns the entry as stored.
@discardableResult
func auditTokenChange(
    dir: String, trail: AuditTrailOptions, record: TokenRecord, action: String
) async throws -> StoredEntry {
    let org = record.org ?? "_operator"
    let event = auditEvent(
        org: org, category: "access", action: action, targetType: "api_token", targetId: record.id,
        metadata: record.auditMetadata)
    guard let e = try await trail.write(dir: dir, events: [event]).first else {
        throw CLIError("the log stored no entry for the token change; nothing was changed")
    }
    return e
}

/// One audit entry about an operator action, as JSON.
func auditEvent(
    org: String, category: String, action: String, targetType: String, targetId: String, metadata: [String: String]
) -> String {
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    let meta = metadata.sorted { $0.key < $1.key }.map {
        CanonicalJSON.quoted($0.key) + ":" + CanonicalJSON.quoted($0.value)
    }.joined(separator: ",")
    return
        "{\"org\":\(CanonicalJSON.quoted(org)),\"category\":\"\(category)\",\"action\":\"\(action)\",\"actor\":{\"type\":\"human\",\"id\":\"uid:\(getuid())\"},\"target\":{\"type\":\"\(targetType)\",\"id\":\(CanonicalJSON.quoted(targetId))},\"outcome\":\"success\",\"source\":{\"service\":\"auditctl\"},\"occurred_at\":\"\(Timestamp.format(now))\",\"metadata\":{\(meta)}}"
}

/// Where an operator action's own audit entry goes: through the socket of the daemon that
/// serves the directory (given, or found in `DIR/auditd.socket`, which auditd writes at start),
/// else straight into the log with its signing key. Either way it is written before the change
/// it records; when it cannot be written, the change is not made.
struct AuditTrailOptions: ParsableArguments {
    @Option(
        help:
            "The daemon's ingest socket, for the audit entry. Default: the one the running auditd recorded in DIR/auditd.socket."
    ) var socket: String?
    @Option(help: "Signing key, when no daemon runs.") var key: String?

    /// The socket this command was given, or the one the running auditd recorded.
    func socketPath(dir: String) -> String? {
        socket
            ?? (try? FileOps.readFile(DataDirectory(dir).daemonSocket, limit: 4096)).map {
                String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
    }

    /// A connection to the daemon serving `dir`, and its socket; nil when none answers.
    func daemon(dir: String) async -> (AuditClient, String)? {
        guard let path = socketPath(dir: dir), FileManager.default.fileExists(atPath: path),
            let client = try? await AuditClient.connect(socketPath: path)
        else { return nil }
        return (client, path)
    }

    /// The log of `dir` opened with its signing key, when no daemon answered: refused (saying
    /// `unchanged`) when a socket was given, or when a daemon holds the directory.
    func openLog(dir: String, unchanged: String) throws -> Ledger {
        if let socket { throw CLIError("cannot reach auditd at \(socket); \(unchanged)") }
        return try openLogWithKey(
            dir, key: key,
            whenLocked:
                "auditd holds \(dir), but its socket \(socketPath(dir: dir).map { "(\($0)) " } ?? "")cannot be reached: pass --socket; \(unchanged)"
        )
    }

    /// Writes audit entries into the log of `dir` and returns them as stored (read back and
    /// checked against the hashes the log acknowledged).
    @discardableResult
    func write(dir: String, events: [String]) async throws -> [StoredEntry] {
        if let (client, path) = await daemon(dir: dir) {
            let results = try await client.append(batch: events.map { Array($0.utf8) })
            await client.close()
            return try results.map { r in
                let ack = try r.get()
                let e = try Ledger.entry(inDirectory: dir, seq: ack.seq, retired: ArchiveTier())
                guard e.hash.bytes == ack.hash else {
                    throw CLIError(
                        "entry \(ack.seq) read back from \(dir) is not the one auditd acknowledged: is \(path) serving another data directory?"
                    )
                }
                return e
            }
        }
        let ledger = try openLog(dir: dir, unchanged: "nothing was changed")
        let now = ReceivedAt.now()
        let receipts = try ledger.appendAndWait(
            try events.map {
                try Entry.prepare(
                    json: Array($0.utf8), receivedAt: now,
                    writer: Writer(uid: getuid(), gid: getgid(), via: "auditctl"),
                    keys: ledger.subjectKeys)
            })
        let stored = try receipts.map { try ledger.entry(seq: $0.seq) }
        try ledger.close()
        return stored
    }
}
