import AuditBase
import LogProofs
import SegmentStore
import Testing

@Suite struct MerkleTests {
    func leaves() throws -> [Hash] {
        let f = try fixture("rfc6962")
        let hexes = try #require(f["leaves_hex"] as? [String])
        return try hexes.map { Merkle.leafHash(try #require([UInt8](hex: $0))) }
    }

    @Test func publishedRootsAtEverySize() throws {
        let f = try fixture("rfc6962")
        let roots = try #require(f["roots_by_size"] as? [String: String])
        let l = try leaves()
        for (size, hex) in roots {
            let n = try #require(Int(size))
            #expect(Merkle.root(l[0..<n]).hex == hex, "root at size \(n)")
        }
    }

    @Test func publishedInclusionProofs() throws {
        let f = try fixture("rfc6962")
        let l = try leaves()
        for case let p as [String: Any] in try #require(f["inclusion"] as? [Any]) {
            let index = UInt64(try #require(p["index"] as? Int))
            let size = UInt64(try #require(p["size"] as? Int))
            let expected = try #require(p["proof"] as? [String])
            let proof = Merkle.inclusionProof(index: index, size: size) { Merkle.root(l[Int($0)..<Int($1)]) }
            #expect(proof.map(\.hex) == expected)
            #expect(
                Merkle.verifyInclusion(
                    index: index, size: size, leaf: l[Int(index)], proof: proof, root: Merkle.root(l[0..<Int(size)])))
        }
    }

    @Test func publishedConsistencyProofs() throws {
        let f = try fixture("rfc6962")
        let l = try leaves()
        for case let p as [String: Any] in try #require(f["consistency"] as? [Any]) {
            let old = UInt64(try #require(p["old"] as? Int))
            let new = UInt64(try #require(p["new"] as? Int))
            let expected = try #require(p["proof"] as? [String])
            let proof = Merkle.consistencyProof(old: old, new: new) { Merkle.root(l[Int($0)..<Int($1)]) }
            #expect(proof.map(\.hex) == expected)
            #expect(
                Merkle.verifyConsistency(
                    old: old, new: new, oldRoot: Merkle.root(l[0..<Int(old)]),
                    newRoot: Merkle.root(l[0..<Int(new)]), proof: proof))
        }
    }

    @Test func everyProofUpTo130LeavesVerifiesAndTamperedOnesFail() {
        let l = (0..<130).map { Merkle.leafHash([UInt8(truncatingIfNeeded: $0), UInt8($0 >> 8)]) }
        for n in 1...130 {
            let root = Merkle.root(l[0..<n])
            for i in stride(from: 0, to: n, by: max(1, n / 9)) {
                let p = Merkle.inclusionProof(index: UInt64(i), size: UInt64(n)) { Merkle.root(l[Int($0)..<Int($1)]) }
                #expect(Merkle.verifyInclusion(index: UInt64(i), size: UInt64(n), leaf: l[i], proof: p, root: root))
                #expect(
                    !Merkle.verifyInclusion(
                        index: UInt64(i), size: UInt64(n), leaf: l[(i + 1) % 130], proof: p, root: root))
            }
            for m in stride(from: 1, through: n, by: max(1, n / 7)) {
                let p = Merkle.consistencyProof(old: UInt64(m), new: UInt64(n)) { Merkle.root(l[Int($0)..<Int($1)]) }
                #expect(
                    Merkle.verifyConsistency(
                        old: UInt64(m), new: UInt64(n), oldRoot: Merkle.root(l[0..<m]), newRoot: root, proof: p))
                if m < n {
                    #expect(
                        !Merkle.verifyConsistency(
                            old: UInt64(m), new: UInt64(n), oldRoot: l[0], newRoot: root, proof: p) || m == 1)
                }
            }
        }
    }
}

@Suite struct NoteTests {
    @Test func reproducesThePublishedSignedNoteByteForByte() throws {
        let f = try fixture("signed-note")
        let signer = try NoteSigner(try #require(f["signer_key"] as? String))
        #expect(signer.verifier.text == f["verifier_key"] as? String)
        #expect(String(signer.verifier.hash, radix: 16) == "c74f20a3")
        let note = try signer.sign(try #require(f["text"] as? String))
        #expect(note == f["signed_note"] as? String)
        let verifier = try NoteVerifier(try #require(f["verifier_key"] as? String))
        #expect(try verifier.open(note) == f["text"] as? String)
    }

    @Test func alteredNoteIsRefused() throws {
        let f = try fixture("signed-note")
        let verifier = try NoteVerifier(try #require(f["verifier_key"] as? String))
        let note = try #require(f["signed_note"] as? String).replacingOccurrences(
            of: "cryptography", with: "cryptograpHy")
        #expect(throws: Note.Failure.self) { try verifier.open(note) }
    }

    @Test func generatedKeysRoundTrip() throws {
        let s = try NoteSigner.generate(name: "audit.test/log")
        let again = try NoteSigner(s.text)
        #expect(again.verifier == s.verifier)
        let cp = Checkpoint(origin: "audit.test/log", size: 7, root: Merkle.emptyRoot)
        let signed = try SignedCheckpoint(note: try s.sign(cp.text), verifier: s.verifier)
        #expect(signed.checkpoint == cp)
    }
}
