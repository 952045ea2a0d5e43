import AuditBase
import Foundation
import Testing

@testable import AuditAccess

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
        #expect(!text.contains(String(orgSecret.split(separator: "_").last ?? "")))
        // A wrong secret, a malformed token, an unknown id.
        #expect(store.authenticate(String(orgSecret.dropLast()) + "x") == nil)
        #expect(store.authenticate("aud_\(org.id)") == nil)
        #expect(store.authenticate("aud_0000000000_secret") == nil)
        #expect(store.authenticate("") == nil)
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
