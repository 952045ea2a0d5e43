import ArgumentParser
import AuditAccess
import AuditClient
import ChainIndex
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `auditctl token create|list|revoke`: read-port bearer tokens.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and revoke read-port tokens (stored hashed in DIR/tokens.json).",
        discussion: "Every change is itself written into the log (category access) through the daemon's socket, or directly when no daemon runs.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token for one org (or --operator) and print it once.")
        @Argument(help: "The data directory.") var dir: String
        @Option(help: "The org this token may read.") var org: String?
        @Flag(help: "Operator scope: may read every org.") var `operator` = false
        @Option(help: "A label for the token.") var label = ""
        @OptionGroup var trail: AuditTrailOptions

        func run() async throws {
            guard (org != nil) != `operator` else { throw ValidationError("give exactly one of --org ORG or --operator") }
            if let org, org.isEmpty || !org.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) { throw ValidationError("--org '\(org)' is not a valid org id") }
            guard FileManager.default.fileExists(atPath: dir + "/log.json") else { throw CLIError("\(dir) is not an audit log directory") }
            let (rec, secret) = try TokenStore.create(path: TokenStore.path(forData: dir), org: org, label: label)
            try await auditTokenChange(dir: dir, trail: trail, record: rec, action: "audit.token.created")
            print(secret)
            printError("token \(rec.id) for \(org.map { "org \($0)" } ?? "operator scope") created; it is shown only now")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")
        @Argument(help: "The data directory.") var dir: String

        func run() throws {
            for r in try TokenStore.load(path: TokenStore.path(forData: dir)) {
                print("\(r.id)\t\(r.org ?? "(operator)")\t\(r.revoked_at.map { "revoked \($0)" } ?? "active")\tcreated \(r.created_at)\t\(r.label)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token by id (takes effect on the next request).")
        @Argument(help: "The data directory.") var dir: String
        @Argument(help: "The token id.") var id: String
        @OptionGroup var trail: AuditTrailOptions

        func run() async throws {
            let rec = try TokenStore.revoke(path: TokenStore.path(forData: dir), id: id)
            try await auditTokenChange(dir: dir, trail: trail, record: rec, action: "audit.token.revoked")
            print("revoked \(rec.id)")
        }
    }
}

/// Writes a token change into the log: through the daemon if one serves `socket`, else directly.
func auditTokenChange(dir: String, trail: AuditTrailOptions, record: TokenRecord, action: String) async throws {
    let org = record.org ?? "_operator"
    let event = auditEvent(org: org, category: "access", action: action, targetType: "api_token", targetId: record.id,
                           metadata: ["scope": record.org ?? "operator", "label": record.label])
    try await trail.write(dir: dir, events: [event])
}

/// One audit entry about an operator action, as JSON.
func auditEvent(org: String, category: String, action: String, targetType: String, targetId: String, metadata: [String: String]) -> String {
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    let meta = metadata.sorted { $0.key < $1.key }.map { CanonicalJSON.quoted($0.key) + ":" + CanonicalJSON.quoted($0.value) }.joined(separator: ",")
    return "{\"org\":\(CanonicalJSON.quoted(org)),\"category\":\"\(category)\",\"action\":\"\(action)\",\"actor\":{\"type\":\"human\",\"id\":\"uid:\(getuid())\"},\"target\":{\"type\":\"\(targetType)\",\"id\":\(CanonicalJSON.quoted(targetId))},\"outcome\":\"success\",\"source\":{\"service\":\"auditctl\"},\"occurred_at\":\"\(Timestamp.format(now))\",\"metadata\":{\(meta)}}"
}

/// Where an operator action's own audit entry goes: through the daemon's socket if one serves
/// it, else straight into the log (with its signing key).
struct AuditTrailOptions: ParsableArguments {
    @Option(help: "The daemon's ingest socket, for the audit entry.") var socket = "./auditd.sock"
    @Option(help: "Signing key, when no daemon runs.") var key: String?

    /// Writes audit entries into the log of `dir`.
    func write(dir: String, events: [String]) async throws {
        if FileManager.default.fileExists(atPath: socket), let client = try? await AuditClient.connect(socketPath: socket) {
            let results = try await client.append(batch: events.map { Array($0.utf8) })
            await client.close()
            for r in results { _ = try r.get() }
            return
        }
        let (signer, _) = try KeyFile.loadOrCreate(path: key ?? KeyFile.defaultPath(forData: dir), name: "auditd.local/log")
        var o = LedgerOptions()
        o.background = false
        let ledger = try Ledger(directory: dir, signer: signer, options: o)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        _ = try ledger.appendAndWait(try events.map { try Entry.prepare(json: Array($0.utf8), receivedAt: now, writer: Writer(uid: getuid(), gid: getgid(), via: "auditctl")) })
        try ledger.close()
    }
}

