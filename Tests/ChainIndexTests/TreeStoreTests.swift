import AuditBase
import Foundation
import LogProofs
import SegmentStore
import Testing

@testable import LogTree

@Suite struct TreeStoreTests {
    func leaves(_ n: Int) -> [Hash] { (0..<n).map { Merkle.leafHash(Array("leaf \($0)".utf8)) } }

    @Test func rootsAndProofsMatchBruteForceForEverySizeUpTo600() throws {
        let dir = temporaryDirectory("tree")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let l = leaves(600)
        let t = try TreeStore(directory: dir)
        for n in 1...600 {
            try t.append([l[n - 1]])
            let root = Merkle.root(l[0..<n])
            #expect(try t.root(at: UInt64(n)) == root, "root at \(n)")
            let i = UInt64((n * 7919) % n)
            let p = try t.inclusionProof(index: i, size: UInt64(n))
            #expect(p == Merkle.inclusionProof(index: i, size: UInt64(n)) { Merkle.root(l[Int($0)..<Int($1)]) })
            #expect(Merkle.verifyInclusion(index: i, size: UInt64(n), leaf: l[Int(i)], proof: p, root: root))
            let m = UInt64(max(1, (n * 31) % n))
            let c = try t.consistencyProof(old: m, new: UInt64(n))
            #expect(
                Merkle.verifyConsistency(
                    old: m, new: UInt64(n), oldRoot: Merkle.root(l[0..<Int(m)]), newRoot: root, proof: c))
        }
    }

    @Test func largeTreeAcrossTwoStoredLevelsSurvivesReopen() throws {
        let dir = temporaryDirectory("tree")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let l = leaves(70_000)  // past 256^2 = 65,536: levels 0, 8 and 16 are stored
        do {
            let t = try TreeStore(directory: dir)
            for c in stride(from: 0, to: l.count, by: 999) { try t.append(Array(l[c..<min(l.count, c + 999)])) }
            try t.sync()
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/level-16.hashes"))
        let t = try TreeStore(directory: dir)
        #expect(t.size == 70_000)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<6 {
            let n = UInt64.random(in: 60_000...70_000, using: &rng)
            let root = Merkle.root(l[0..<Int(n)])
            #expect(try t.root(at: n) == root)
            let i = UInt64.random(in: 0..<n, using: &rng)
            #expect(
                Merkle.verifyInclusion(
                    index: i, size: n, leaf: l[Int(i)], proof: try t.inclusionProof(index: i, size: n), root: root))
            let m = UInt64.random(in: 1...n, using: &rng)
            #expect(
                Merkle.verifyConsistency(
                    old: m, new: n, oldRoot: Merkle.root(l[0..<Int(m)]), newRoot: root,
                    proof: try t.consistencyProof(old: m, new: n)))
        }
    }

    @Test func missingHigherLevelHashesAreRecomputedOnOpen() throws {
        let dir = temporaryDirectory("tree")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let l = leaves(1000)
        do { try TreeStore(directory: dir).append(l) }
        try FileManager.default.removeItem(atPath: dir + "/level-08.hashes")
        let t = try TreeStore(directory: dir)
        #expect(try t.root(at: 1000) == Merkle.root(l[...]))
        #expect(try t.root(at: 512) == Merkle.root(l[0..<512]))
    }

    @Test func compactRangeMatchesRecursiveRoot() {
        let l = leaves(300)
        var r = CompactRange()
        for n in 1...300 {
            r.append(l[n - 1])
            #expect(r.root() == Merkle.root(l[0..<n]))
        }
    }
}
