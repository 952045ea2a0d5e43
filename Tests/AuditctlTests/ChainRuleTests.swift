import AuditBase
import AuditEntries
import Foundation
import LogTree
import SegmentStore
import Testing

/// The chain rule's one home (`OrgPosition`, `Link.stored`), and the readers that use it.
@Suite struct ChainRuleTests {
    /// A data directory whose entry 1 says its org's previous entry is 1,000 back (before the
    /// log began): bytes no commit writes, but a reader meets them on a damaged or forged disk.
    static func forgedDirectory() throws -> String {
        let dir = temporaryDirectory("chain-rule")
        let store = try SegmentStore(directory: DataDirectory(dir).segments)
        let content = Array(#"{"org":"org_a"}"#.utf8)
        let payloads = [
            RecordPayload(orgSeq: 0, prevOrgDelta: 0, content: content),
            RecordPayload(orgSeq: 1, prevOrgDelta: 1_000, content: content),
        ]
        _ = try store.write(payloads.map { StoreRecord(key: 1, payload: $0.bytes) })
        try store.sync()
        let tree = try TreeStore(directory: DataDirectory(dir).tree)
        try tree.append([SHA256.hash([1]), SHA256.hash([2])])
        try tree.sync()
        return dir
    }

    @Test func showRefusesAnImpossibleChainHeaderInsteadOfTrapping() throws {
        let dir = try Self.forgedDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, _, err) = try run("auditctl", ["show", dir, "--seq", "1"])
        #expect(status == 1, "auditctl show must refuse, not crash: exit \(status), \(err)")
        #expect(err.contains("entry 1 has an impossible org chain header"), "\(err)")
        // The first entry is fine as far as its header goes (its leaf is not its hash, which
        // `show` reports rather than hides).
        let (ok, out, _) = try run("auditctl", ["show", dir, "--seq", "0"])
        #expect(ok == 0)
        let shown = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        #expect(shown?["matches_tree"] as? Bool == false, "\(out)")
    }

    @Test func aPositionLinksAndChecksTheNextEntry() throws {
        let c = SHA256.hash([7])
        var org = OrgPosition.start
        #expect(org.header(at: 5) == (0, 0))
        let first = org.link(seq: 5, prev: .zero, contentHash: c)
        #expect(first.orgSeq == 0 && first.prevOrgHash == .zero)
        #expect(try org.expect(seq: 5, orgSeq: 0, prevOrgDelta: 0, prev: .zero, contentHash: c) == first)
        #expect(throws: ChainError.self) {
            try org.expect(seq: 5, orgSeq: 0, prevOrgDelta: 3, prev: .zero, contentHash: c)
        }
        #expect(throws: ChainError.self) {
            try org.expect(seq: 5, orgSeq: 1, prevOrgDelta: 0, prev: .zero, contentHash: c)
        }
        org.advance(seq: 5, leaf: first.leafHash)
        #expect(org.header(at: 9) == (1, 4))
        let second = org.link(seq: 9, prev: SHA256.hash([8]), contentHash: c)
        #expect(second.prevOrgHash == first.leafHash)
        #expect(try org.expect(seq: 9, orgSeq: 1, prevOrgDelta: 4, prev: SHA256.hash([8]), contentHash: c) == second)
        #expect(throws: ChainError.self) {
            try org.expect(seq: 9, orgSeq: 1, prevOrgDelta: 3, prev: .zero, contentHash: c)
        }
        #expect(throws: ChainError.self) {
            try org.expect(seq: 9, orgSeq: 2, prevOrgDelta: 4, prev: .zero, contentHash: c)
        }
        // An exported link is checked by position and previous-org hash.
        try org.expect(second)
        var forged = second
        forged.prevOrgHash = .zero
        #expect(throws: ChainError.self) { try org.expect(forged) }
        #expect(throws: ChainError.self) { try OrgPosition.start.expect(second) }
        // Known only by its hash (a bundle's org_start): the distance back is checked for range.
        let known = OrgPosition(count: 3, lastSeq: nil, lastHash: first.leafHash)
        #expect(throws: ChainError.self) {
            try known.expect(seq: 9, orgSeq: 3, prevOrgDelta: 0, prev: .zero, contentHash: c)
        }
        #expect(throws: ChainError.self) {
            try known.expect(seq: 9, orgSeq: 3, prevOrgDelta: 10, prev: .zero, contentHash: c)
        }
        #expect(
            try known.expect(seq: 9, orgSeq: 3, prevOrgDelta: 9, prev: .zero, contentHash: c).prevOrgHash
                == first.leafHash)
    }

    @Test func aStoredLinkIsRebuiltFromTheTreeOrRefused() throws {
        let leaves = (0..<10).map { SHA256.hash([UInt8($0)]) }
        let c = SHA256.hash([9])
        let l = try Link.stored(seq: 7, orgSeq: 2, prevOrgDelta: 3, contentHash: c) { leaves[Int($0)] }
        #expect(l.prevHash == leaves[6] && l.prevOrgHash == leaves[4] && l.orgSeq == 2)
        let first = try Link.stored(seq: 0, orgSeq: 0, prevOrgDelta: 0, contentHash: c) { leaves[Int($0)] }
        #expect(first.prevHash == .zero && first.prevOrgHash == .zero)
        for (o, d) in [(UInt64(2), UInt64(8)), (0, 1), (1, 0), (8, 3), (1, .max)] {
            #expect(throws: ChainError.self, "orgSeq \(o), delta \(d)") {
                try Link.stored(seq: 7, orgSeq: o, prevOrgDelta: d, contentHash: c) { leaves[Int($0)] }
            }
        }
    }
}
