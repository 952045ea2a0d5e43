import AuditBase
import Foundation
import LogProofs
import SegmentStore
import Testing

@testable import AuditEntries
@testable import ChainIndex

/// The test vectors of format-spec.md §11 are regenerated from the code and compared with the
/// JSON block in the spec itself, so the spec and the code cannot drift apart.
/// `AUDITLOG_PRINT_VECTORS=1 swift test --filter SpecVectorTests` prints fresh vectors.
@Suite struct SpecVectorTests {
    static let inputs = [
        #"{"org":"org_alpha","category":"authentication","action":"auth.login.success","actor":{"type":"human","id":"usr_1"},"target":{"type":"session","id":"sess_1"},"outcome":"success","source":{"service":"sso","ip":"192.0.2.1"},"occurred_at":"2025-03-01T00:00:00.100Z","idempotency_key":"a-1","metadata":{"method":"password","mfa":true}}"#,
        #"{"org":"org_beta","category":"credentials","action":"credential.revealed","actor":{"type":"human","id":"usr_2"},"target":{"type":"credential","id":"cred_9"},"outcome":"success","source":{"service":"vault"},"occurred_at":"2025-03-01T00:00:01.000Z","metadata":{"vault":"ops"}}"#,
        #"{"org":"org_alpha","category":"agents","action":"agent.vm.provisioned","actor":{"type":"agent","id":"agt_7"},"on_behalf_of":{"type":"human","id":"usr_1","approval":"apr_3"},"target":{"type":"vm","id":"vm_4"},"outcome":"success","source":{"service":"orchestrator"},"occurred_at":"2025-03-01T00:00:02.000Z","metadata":{"cpus":4}}"#,
        #"{"org":"org_beta","category":"access","action":"access.denied","actor":{"type":"service","id":"svc_ci"},"target":{"type":"repository","id":"repo_2"},"outcome":"denied","source":{"service":"gateway"},"occurred_at":"2025-03-01T00:00:03.000Z"}"#,
        #"{"org":"org_alpha","category":"files","action":"files.search","actor":{"type":"human","id":"usr_1"},"target":{"type":"index","id":"brain"},"outcome":"success","source":{"service":"brain"},"occurred_at":"2025-03-01T00:00:04.000Z","metadata":{"result_count":12}}"#,
    ]
    static let receivedAt: Int64 = 1_740_787_205_000  // 2025-03-01T00:00:05.000Z, +1 ms per entry
    static let writer = Writer(uid: 1001, gid: 1001, via: "socket")

    static func signer() throws -> NoteSigner {
        try NoteSigner(name: "audit.example/log", seed: SHA256.hash(Array("auditlog format-spec test key".utf8)).bytes)
    }

    /// Builds the vector log in a fresh directory and describes it.
    static func generate() throws -> [String: Any] {
        let dir = temporaryDirectory("vectors")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try signer()
        var o = LedgerOptions()
        o.background = false
        let l = try Ledger(directory: dir, signer: s, options: o)
        let prepared = try inputs.enumerated().map {
            try Entry.prepare(json: Array($1.utf8), receivedAt: receivedAt + Int64($0), writer: writer)
        }
        _ = try l.appendAndWait(prepared)
        try l.checkpointNow()
        var entries: [[String: Any]] = []
        for seq in 0..<UInt64(inputs.count) {
            let e = try l.entry(seq: seq)
            let p = try RecordPayload(bytes: try l.store.read(seq: seq).payload)
            entries.append([
                "seq": Int(seq), "org": e.org, "content": String(decoding: e.content, as: UTF8.self),
                "content_hash": e.link.contentHash.hex,
                "payload_header_hex": p.bytes.prefix(2).map { String(format: "%02x", $0) }.joined(),
                "link_hex": e.link.bytes.hex, "hash": e.hash.hex,
            ])
        }
        var roots: [String: String] = [:]
        for n in 0...UInt64(inputs.count) { roots[String(n)] = try l.tree.root(at: n).hex }
        let cp = try #require(l.latestCheckpoint)
        let header = SegmentHeader(flags: SegmentFormat.flagOpen, segment: 0, firstSeq: 0).encoded().hex
        let out: [String: Any] = [
            "signer_key": s.text, "verifier_key": s.verifier.text,
            "received_at_first": Timestamp.format(receivedAt), "writer": ["uid": 1001, "gid": 1001, "via": "socket"],
            "entries": entries, "roots_by_size": roots,
            "inclusion": ["seq": 2, "size": 5, "proof": try l.inclusionProof(seq: 2, size: 5).map(\.hex)],
            "consistency": ["old": 2, "new": 5, "proof": try l.consistencyProof(old: 2, new: 5).map(\.hex)],
            "checkpoint": cp.note, "open_segment_header_hex": header,
        ]
        try l.close()
        return out
    }

    static func specVectors(file: String = #filePath) throws -> [String: Any] {
        let root = URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let spec = try String(contentsOf: root.appendingPathComponent("format-spec.md"), encoding: .utf8)
        guard let start = spec.range(of: "<!-- vectors:begin -->"), let end = spec.range(of: "<!-- vectors:end -->")
        else {
            throw FixtureMissing(name: "format-spec.md vectors block")
        }
        var block = String(spec[start.upperBound..<end.lowerBound])
        block = block.replacingOccurrences(of: "```json", with: "").replacingOccurrences(of: "```", with: "")
        return try #require(try JSONSerialization.jsonObject(with: Data(block.utf8)) as? [String: Any])
    }

    @Test func formatSpecVectorsMatchTheCode() throws {
        let fresh = try Self.generate()
        let data = try JSONSerialization.data(
            withJSONObject: fresh, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        if ProcessInfo.processInfo.environment["AUDITLOG_PRINT_VECTORS"] == "1" {
            print("VECTORS\n" + String(decoding: data, as: UTF8.self))
        }
        let spec = try Self.specVectors()
        let a = try JSONSerialization.data(withJSONObject: spec, options: [.sortedKeys])
        let b = try JSONSerialization.data(withJSONObject: fresh, options: [.sortedKeys])
        #expect(
            String(decoding: a, as: UTF8.self) == String(decoding: b, as: UTF8.self),
            "format-spec.md §11 vectors differ from what the code produces")
    }

    @Test func vectorsVerifyWithNothingButTheSpec() throws {
        // What an independent implementation does with the spec's vectors alone.
        let v = try Self.specVectors()
        let keyText = try #require(v["verifier_key"] as? String)
        let note = try #require(v["checkpoint"] as? String)
        let key = try NoteVerifier(keyText)
        let cp = try SignedCheckpoint(note: note, verifier: key)
        let entries = try #require(v["entries"] as? [[String: Any]])
        var leaves: [Hash] = []
        for e in entries {
            let text = try #require(e["content"] as? String)
            let content = Array(text.utf8)
            #expect(SHA256.hash(content).hex == e["content_hash"] as? String)
            let linkHex = try #require(e["link_hex"] as? String)
            let link = try #require([UInt8](hex: linkHex))
            #expect(link.count == 113)
            #expect(Array(link[17..<49]) == SHA256.hash(content).bytes)
            let leaf = Merkle.leafHash(link)
            #expect(leaf.hex == e["hash"] as? String)
            if let prev = leaves.last { #expect(Array(link[49..<81]) == prev.bytes) }
            leaves.append(leaf)
        }
        #expect(Merkle.root(leaves[...]) == cp.checkpoint.root)
        let inc = try #require(v["inclusion"] as? [String: Any])
        let proofHex = try #require(inc["proof"] as? [String])
        let proof = proofHex.compactMap { Hash(hex: $0) }
        #expect(Merkle.verifyInclusion(index: 2, size: 5, leaf: leaves[2], proof: proof, root: cp.checkpoint.root))
        let con = try #require(v["consistency"] as? [String: Any])
        let cproofHex = try #require(con["proof"] as? [String])
        let cproof = cproofHex.compactMap { Hash(hex: $0) }
        #expect(
            Merkle.verifyConsistency(
                old: 2, new: 5, oldRoot: Merkle.root(leaves[0..<2]), newRoot: cp.checkpoint.root, proof: cproof))
    }
}
