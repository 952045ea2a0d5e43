import AuditBase
import Foundation
import Testing

@testable import AuditAccess

#if canImport(Glibc)
import Glibc
#endif

/// Read-port tokens on their own (format-spec.md §1 `tokens.json`): stored as hashes, one org
/// or operator scope, revocation seen at once, refused records never authenticate.
@Suite struct TokenStoreTests {
    func file() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir + "/tokens.json"
    }

    @Test func aTokenAuthenticatesWithItsScopeAndOnlyWithItsSecret() throws {
        let path = file()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let (org, orgSecret) = try TokenStore.create(path: path, org: "org_a", label: "admin a")
        let (op, opSecret) = try TokenStore.create(path: path, org: nil, label: "operator")
        let store = TokenStore(path: path, admit: { _ in nil })
        #expect(store.authenticate(orgSecret) == TokenScope(id: org.id, org: "org_a"))
        #expect(store.authenticate(opSecret) == TokenScope(id: op.id, org: nil))
        #expect(store.authenticate(orgSecret)?.allows(org: "org_b") == false)
        #expect(store.authenticate(opSecret)?.allows(org: "org_b") == true)
        // The file holds hashes, never a secret.
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let secret = String(try #require(TokenStore.parts(of: orgSecret)).secret)
        #expect(secret.count == 43 && !text.contains(secret))
        // A wrong secret, a malformed token, an unknown id.
        #expect(store.authenticate(String(orgSecret.dropLast()) + "x") == nil)
        #expect(store.authenticate("aud_\(org.id)") == nil)
        #expect(store.authenticate("aud_0000000000_secret") == nil)
        #expect(store.authenticate("") == nil)
    }

    @Test func aSecretHoldingAnUnderscoreIsReadWhole() throws {
        // base64url has `_`: about half of all secrets hold one, and the token's own
        // separators are `_` too. Only the first two split it.
        let rec = try #require(
            try (0..<200).lazy.map { _ in try TokenStore.make(org: "org_a", label: "u") }.first {
                $0.secret?.split(separator: "_").count ?? 0 > 3
            })
        let token = try #require(rec.secret)
        let parts = try #require(TokenStore.parts(of: token))
        #expect(parts.id == rec.id && parts.secret.count == 43 && parts.secret.contains("_"), "\(token)")
        let path = file()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        try TokenStore.add(rec, path: path)
        let store = TokenStore(path: path, admit: { _ in nil })
        #expect(store.authenticate(token) == TokenScope(id: rec.id, org: "org_a"))
        // What a split at every `_` would have taken for the secret is refused.
        #expect(store.authenticate("aud_\(rec.id)_" + (parts.secret.split(separator: "_").last ?? "")) == nil)
        #expect(TokenStore.parts(of: "aud_\(rec.id)") == nil && TokenStore.parts(of: "bearer_x_y") == nil)
    }

    @Test func aTokenStopsAtItsExpiry() throws {
        let path = file()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        var rec = try TokenStore.make(org: "org_a", label: "t", ttl: 60_000)
        let secret = try #require(rec.secret)
        try TokenStore.add(rec, path: path)
        let store = TokenStore(path: path, admit: { _ in nil })
        let end = try #require(rec.expires_at.flatMap(Timestamp.parse))
        #expect(
            store.check(secret, now: end - 1) == .scope(TokenScope(id: rec.id, org: "org_a", expiresAt: rec.expires_at))
        )
        #expect(store.check(secret, now: end) == .expired(id: rec.id, at: rec.expires_at ?? ""))
        // Only the holder of the secret learns that it expired.
        #expect(store.check(String(secret.dropLast()) + "x", now: end) == .refused)
        // An expiry that does not parse is refused, not read as none.
        rec.expires_at = "soon"
        let other = TokenStore(path: path, admit: { _ in nil })
        try TokenStore.save([rec], path: path)
        #expect(other.check(secret, now: 0) == .expired(id: rec.id, at: "soon"))
        #expect(throws: AuditError.self) { _ = try TokenStore.make(org: "org_a", label: "t", ttl: 0) }
        #expect(throws: AuditError.self) {
            _ = try TokenStore.make(org: "org_a", label: "t", ttl: TokenStore.maxTTL + 1)
        }
    }

    @Test func aRevokedTokenStopsAtOnce() throws {
        let path = file()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let (rec, secret) = try TokenStore.create(path: path, org: "org_a", label: "t")
        let store = TokenStore(path: path, admit: { _ in nil })
        #expect(store.authenticate(secret) != nil)
        _ = try TokenStore.revoke(path: path, id: rec.id)
        #expect(store.authenticate(secret) == nil)
        #expect(throws: AuditError.self) { _ = try TokenStore.revoke(path: path, id: "ffffffffff") }
    }

    /// The clock behind file times ticks every few milliseconds: a revocation written in the
    /// same tick as the read before it leaves the time unchanged (seen once in CI, under load).
    @Test func aRevocationInTheSameClockTickIsSeen() throws {
        let path = file()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let (rec, secret) = try TokenStore.create(path: path, org: "org_a", label: "t")
        let store = TokenStore(path: path, admit: { _ in nil })
        #expect(store.authenticate(secret) != nil)
        let before = try mtime(path)
        _ = try TokenStore.revoke(path: path, id: rec.id)
        try setMtime(path, before)
        #expect(store.authenticate(secret) == nil, "a revocation with the old file time was missed")

        // The same inode, size and time, other bytes: only the bytes tell.
        let (_, second) = try TokenStore.create(path: path, org: "org_b", label: "u")
        #expect(store.authenticate(second) != nil)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let t2 = try mtime(path)
        let edited = text.replacingOccurrences(of: "\"org_b\"", with: "\"org_c\"")
        let fd = open(path, O_WRONLY)
        #expect(fd >= 0)
        _ = Array(edited.utf8).withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        close(fd)
        try setMtime(path, t2)
        #expect(store.authenticate(second)?.org == "org_c", "an edit in place with the old time was missed")
    }

    func mtime(_ path: String) throws -> timespec {
        var st = stat()
        guard stat(path, &st) == 0 else { throw AuditError("stat \(path)") }
        return st.st_mtim
    }

    func setMtime(_ path: String, _ t: timespec) throws {
        let times = [t, t]
        guard utimensat(AT_FDCWD, path, times, 0) == 0 else { throw AuditError("utimensat \(path)") }
    }

    @Test func aRefusedRecordNeverAuthenticatesAndIsNamed() throws {
        let path = file()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let (_, secret) = try TokenStore.create(path: path, org: "org_a", label: "t")
        let logged = Logged()
        let store = TokenStore(path: path, admit: { _ in "no audit entry" }, log: { logged.add($0) })
        #expect(store.authenticate(secret) == nil)
        #expect(logged.lines.contains { $0.contains("no audit entry") })
    }

    @Test func anOrgNameOutsideTheSchemaIsRefused() {
        #expect(throws: AuditError.self) { _ = try TokenStore.make(org: "org a", label: "t") }
        #expect(throws: AuditError.self) { _ = try TokenStore.make(org: String(repeating: "o", count: 65), label: "t") }
    }

    final class Logged: @unchecked Sendable {
        private let lock = NSLock()
        private var _lines: [String] = []
        var lines: [String] { lock.withLock { _lines } }
        func add(_ s: String) { lock.withLock { _lines.append(s) } }
    }
}
