import AuditBase
import AuditEntries
import Foundation
import LogProofs

#if canImport(Glibc)
import Glibc
#endif

/// A read-port bearer token as stored: only the SHA-256 of its secret is kept.
public struct TokenRecord: Codable, Sendable, Equatable {
    /// Public id (also the first part of the token text).
    public var id: String
    /// The org the token reads, or nil for operator scope (any org).
    public var org: String?
    /// Hex SHA-256 of the secret.
    public var hash: String
    /// A human label.
    public var label: String
    /// RFC 3339 creation time.
    public var created_at: String
    /// RFC 3339 revocation time, once revoked.
    public var revoked_at: String?
    /// RFC 3339 time from which the token is refused (nil: it does not expire). Recorded in its
    /// audit entry, so a hand edit that moves it is refused like any other.
    public var expires_at: String? = nil
    /// The `audit.token.created` entry that recorded this token, bound by seq to the tree's
    /// leaf (format-spec.md §1): a token without one, or whose entry says otherwise, is refused.
    public var audit: EntryBinding?
    /// The token text of a token just created (never stored, never encoded).
    public var secret: String? = nil

    enum CodingKeys: String, CodingKey {
        case id, org, hash, label, created_at, revoked_at, expires_at, audit
    }

    /// True once `now` (ms since 1970) is at or past the expiry; an expiry that does not parse
    /// counts as passed, never as "no expiry".
    public func expired(at now: Int64) -> Bool {
        guard let expires_at else { return false }
        guard let t = Timestamp.parse(expires_at) else { return true }
        return now >= t
    }

    /// The metadata of the token's `audit.token.created` entry: its scope, label and the
    /// SHA-256 of its secret (so the entry names this credential, not just this id).
    public var auditMetadata: [String: String] {
        var m = ["scope": org ?? "operator", "label": label, "token_sha256": hash]
        if let expires_at { m["expires_at"] = expires_at }
        return m
    }

    /// Why this record does not stand on its audit entry, or nil when it does: the entry
    /// (read from the record, checked against the leaf hashes `leaf` of a tree of `size`)
    /// must be `audit.token.created` for this id, with this scope and this secret's hash.
    public func auditProblem(leaf: (UInt64) throws -> Hash, size: UInt64) -> String? {
        guard let audit else {
            return
                "token \(id) carries no audit entry: it was added by hand (or made before tokens were bound to their entries); revoke it and create a new one with `auditctl token create`"
        }
        let e: JSONValue
        do { e = try audit.open(leaf: leaf, size: size) } catch { return "token \(id): \(error)" }
        let m = e["metadata"]
        guard e["action"]?.stringValue == "audit.token.created", e["target"]?["id"]?.stringValue == id else {
            return
                "token \(id): its audit entry (seq \(audit.seq)) records \(e["action"]?.stringValue ?? "?") of \(e["target"]?["id"]?.stringValue ?? "?"), not this token's creation: the record was made by hand"
        }
        guard m?["scope"]?.stringValue == org ?? "operator" else {
            return
                "token \(id) reads \(org ?? "any org (operator)"), but the log created it for \(m?["scope"]?.stringValue ?? "?")"
        }
        guard m?["token_sha256"]?.stringValue == hash else {
            return
                "token \(id)'s secret hash is not the one its audit entry (seq \(audit.seq)) recorded: another secret was put in by hand"
        }
        guard m?["expires_at"]?.stringValue == expires_at else {
            return
                "token \(id) expires \(expires_at ?? "never"), but its audit entry (seq \(audit.seq)) says \(m?["expires_at"]?.stringValue ?? "never"): the expiry was changed by hand"
        }
        return nil
    }
}

/// Who a request is, once its token is checked.
public struct TokenScope: Sendable, Equatable {
    /// The token id.
    public var id: String
    /// The org it may read; nil for an operator token.
    public var org: String?
    /// When it stops working (RFC 3339), if it expires.
    public var expiresAt: String? = nil

    /// True if this scope may read `org`: the token's org and the requested org must agree,
    /// unless the token has operator scope.
    public func allows(org requested: String) -> Bool { org == nil || org == requested }
}

/// The token file (`tokens.json` in the data directory, mode 0600): created, listed and revoked
/// by `auditctl token`, read (and re-read when it changes) by `auditd`.
public final class TokenStore: @unchecked Sendable {
    /// The file.
    public let path: String
    private let lock = NSLock()
    private var records: [String: TokenRecord] = [:]
    /// The file as it was when last read: its identity, and the digest of its bytes.
    private var loaded: FileStamp?
    private let admit: @Sendable (TokenRecord) -> String?
    private let log: @Sendable (String) -> Void

    /// The store at `path` (the file need not exist yet). Each record is read only if `admit`
    /// gives no reason against it (auditd: `auditProblem` against its tree); a refused one is
    /// named once to `log` each time the file is read, and never authenticates.
    public init(
        path: String, admit: @escaping @Sendable (TokenRecord) -> String?,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.path = path
        self.admit = admit
        self.log = log
    }

    /// The token file of a data directory.
    public static func path(forData dir: String) -> String { DataDirectory(dir).tokens }

    /// Loads every record.
    public static func load(path: String) throws -> [TokenRecord] {
        guard let b = try FileOps.readFile(path) else { return [] }
        do { return try decode(b) } catch { throw AuditError("token file \(path) is malformed: \(error)") }
    }

    static func decode(_ bytes: [UInt8]) throws -> [TokenRecord] {
        try JSONDecoder().decode([TokenRecord].self, from: Data(bytes))
    }

    static func save(_ records: [TokenRecord], path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileOps.replaceFile(path, contents: Array(try enc.encode(records)), mode: 0o600)
    }

    /// A new token for `org` (nil: operator scope) with its secret text, which is shown once
    /// and never stored. Nothing is written: once its audit entry is in the log, set `audit`
    /// and `add` it.
    public static func make(org: String?, label: String, ttl: Int64? = nil) throws -> TokenRecord {
        if let org, !Entry.isValidOrgName(org) {
            throw AuditError("'\(org)' is not an org name (1–64 of [A-Za-z0-9_.:@/-])")
        }
        let id = Array(try Ed25519.randomSeed().prefix(5)).hex
        let secret = Data(try Ed25519.randomSeed()).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(
                of: "=", with: "")
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var rec = TokenRecord(
            id: id, org: org, hash: SHA256.hash(Array(secret.utf8)).hex, label: label,
            created_at: Timestamp.format(now), revoked_at: nil)
        if let ttl {
            guard ttl > 0, ttl <= maxTTL else {
                throw AuditError("a token's lifetime must be from 1 ms to \(maxTTL / 86_400_000) days")
            }
            rec.expires_at = Timestamp.format(now + ttl)
        }
        rec.secret = "aud_\(id)_\(secret)"
        return rec
    }

    /// A token's id and secret: `aud_<id>_<secret>`, where the secret (base64url) may itself
    /// hold `_`; nil for anything else.
    public static func parts(of token: String) -> (id: Substring, secret: Substring)? {
        let parts = token.split(separator: "_", maxSplits: 2)
        guard parts.count == 3, parts[0] == "aud" else { return nil }
        return (parts[1], parts[2])
    }

    /// Adds `record` (its secret not stored) to the file.
    public static func add(_ record: TokenRecord, path: String) throws {
        var stored = record
        stored.secret = nil
        var all = try load(path: path)
        guard !all.contains(where: { $0.id == record.id }) else {
            throw AuditError("a token with id \(record.id) is already in \(path)")
        }
        all.append(stored)
        try save(all, path: path)
    }

    /// Creates a token at once with no audit entry (tests of the files alone: auditd and
    /// `auditctl verify` refuse such a token); see `make`.
    public static func create(path: String, org: String?, label: String) throws -> (TokenRecord, String) {
        let rec = try make(org: org, label: label)
        try add(rec, path: path)
        return (rec, rec.secret ?? "")
    }

    /// Applies logged token changes to the file at `path`: each `audit.token.created` entry
    /// among `entries` adds its token (scope, label and secret hash as the entry recorded them,
    /// bound to the entry), each `audit.token.revoked` entry revokes one. A read replica's
    /// tokens are made this way, from the log alone: the log is their witness (format-spec.md
    /// §1). Returns how many records changed.
    @discardableResult
    public static func apply(logged entries: [StoredEntry], path: String) throws -> Int {
        var all = try load(path: path)
        var changed = 0
        for e in entries {
            guard let v = try? Entry.decodeStored(e.content), let action = v["action"]?.stringValue,
                let id = v["target"]?["id"]?.stringValue
            else { continue }
            let time = v["received_at"]?.stringValue ?? v["occurred_at"]?.stringValue ?? ""
            switch action {
            case "audit.token.created":
                guard !all.contains(where: { $0.id == id }), let m = v["metadata"],
                    let scope = m["scope"]?.stringValue, let hash = m["token_sha256"]?.stringValue
                else { continue }
                all.append(
                    TokenRecord(
                        id: id, org: scope == "operator" ? nil : scope, hash: hash,
                        label: m["label"]?.stringValue ?? "", created_at: time, revoked_at: nil,
                        expires_at: m["expires_at"]?.stringValue, audit: EntryBinding(e)))
                changed += 1
            case "audit.token.revoked":
                guard let i = all.firstIndex(where: { $0.id == id }), all[i].revoked_at == nil else { continue }
                all[i].revoked_at = time
                changed += 1
            default: continue
            }
        }
        if changed > 0 { try save(all, path: path) }
        return changed
    }

    /// Revocation of token `id`, checked; nothing is written until the change is committed.
    public static func prepareRevoke(path: String, id: String) throws -> Change<TokenRecord> {
        let all = try load(path: path)
        guard let i = all.firstIndex(where: { $0.id == id }) else {
            throw AuditError("no token with id \(id) (see `auditctl token list`)")
        }
        guard all[i].revoked_at == nil else { throw AuditError("token \(id) is already revoked") }
        var rec = all[i]
        rec.revoked_at = Timestamp.format(Int64(Date().timeIntervalSince1970 * 1000))
        let revoked = rec
        return Change(revoked) {
            var now = try load(path: path)
            guard let k = now.firstIndex(where: { $0.id == id }) else {
                throw AuditError("token \(id) vanished while it was being revoked")
            }
            now[k].revoked_at = now[k].revoked_at ?? revoked.revoked_at
            try save(now, path: path)
        }
    }

    /// Revokes token `id` at once; see `prepareRevoke`.
    public static func revoke(path: String, id: String) throws -> TokenRecord {
        let c = try prepareRevoke(path: path, id: id)
        try c.commit()
        return c.value
    }

    /// Re-reads the file when it changed since it was last read. A file's stamp (inode, size,
    /// modification time) tells most changes, but the clock behind modification times ticks
    /// every few milliseconds: a file written within the same tick as the read before it
    /// shows the same time. While the stamp is that recent, the bytes are compared too (as git
    /// treats a "racily clean" index), so a revocation is seen at once.
    private func reloadIfChanged() {
        var st = stat()
        guard stat(path, &st) == 0 else {
            lock.withLock {
                records = [:]
                loaded = nil
            }
            return
        }
        let stamp = FileStamp(st)
        let known = lock.withLock { loaded }
        if let known, known.same(as: stamp), !stamp.isRecent { return }
        guard let bytes = try? FileOps.readFile(path, limit: 64 << 20) else { return }
        let digest = SHA256.hash(bytes)
        if let known, known.same(as: stamp), known.digest == digest { return }
        guard let all = try? Self.decode(bytes) else { return }
        var admitted: [TokenRecord] = []
        for r in all where r.revoked_at == nil {
            if let why = admit(r) { log("tokens.json: refusing \(why)") } else { admitted.append(r) }
        }
        lock.withLock {
            records = Dictionary(admitted.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
            loaded = FileStamp(st, digest: digest)
        }
    }

    /// What a bearer token is: a scope, expired (its id and when), or nothing known.
    public enum Authentication: Sendable, Equatable {
        case scope(TokenScope)
        case expired(id: String, at: String)
        case refused
    }

    /// Longest lifetime a token may be given: ten years, in ms.
    public static let maxTTL: Int64 = 3650 * 86_400_000

    /// Checks an `Authorization: Bearer` token at `now` (ms since 1970): unknown, malformed and
    /// revoked tokens are refused; one past its expiry is named as expired (only once its
    /// secret matched, so the answer tells nothing to someone who guessed an id).
    public func check(_ token: String, now: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) -> Authentication {
        reloadIfChanged()
        guard let (id, secret) = Self.parts(of: token), let rec = lock.withLock({ records[String(id)] }),
            rec.revoked_at == nil,
            let want = Hash(hex: rec.hash)
        else { return .refused }
        // Hash comparison is constant-time (Hash ==).
        guard SHA256.hash(Array(secret.utf8)) == want else { return .refused }
        if rec.expired(at: now) { return .expired(id: rec.id, at: rec.expires_at ?? "") }
        return .scope(TokenScope(id: rec.id, org: rec.org, expiresAt: rec.expires_at))
    }

    /// The ids of the records the store stands on now: in the file, not revoked, and admitted
    /// (backed by their audit entry).
    public var admittedIDs: Set<String> {
        reloadIfChanged()
        return lock.withLock { Set(records.keys) }
    }

    /// The scope of an `Authorization: Bearer` token, or nil if it is unknown, malformed,
    /// revoked or expired.
    public func authenticate(_ token: String) -> TokenScope? {
        if case .scope(let s) = check(token) { return s }
        return nil
    }
}

/// What identifies one version of a file without reading it, and the digest of its bytes.
struct FileStamp: Sendable {
    var inode: UInt64
    var size: Int64
    var mtime: timespec
    var digest: Hash = .zero

    init(_ st: stat, digest: Hash = .zero) {
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        mtime = st.st_mtim
        self.digest = digest
    }

    /// The same inode, size and modification time.
    func same(as o: FileStamp) -> Bool {
        inode == o.inode && size == o.size && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec
    }

    /// Modified within the last two seconds: another write in the same clock tick would not
    /// change the time.
    var isRecent: Bool {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) - Int64(mtime.tv_sec) < 2
    }
}
