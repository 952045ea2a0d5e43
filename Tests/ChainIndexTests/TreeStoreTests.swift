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
        do {
            let t = try TreeStore(directory: dir)
            try t.append(l)
            try t.flush()
        }
        try FileManager.default.removeItem(atPath: dir + "/level-08.hashes")
        let t = try TreeStore(directory: dir)
        #expect(try t.root(at: 1000) == Merkle.root(l[...]))
        #expect(try t.root(at: 512) == Merkle.root(l[0..<512]))
    }

    func fileHashes(_ dir: String, _ level: String) throws -> Int {
        let size = try FileManager.default.attributesOfItem(atPath: dir + "/level-\(level).hashes")[.size] as? Int
        return (size ?? -1) / 32
    }

    /// An append is in memory at once, where every read finds it, and in the files only once
    /// flushed: the tree takes a group's leaves before its acks without writing (format-spec.md §3).
    @Test func appendedLeavesAreReadBeforeTheyAreWritten() throws {
        let dir = temporaryDirectory("tree")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let l = leaves(700)
        let t = try TreeStore(directory: dir)
        try t.append(Array(l[0..<300]))
        try t.flush()
        try t.append(Array(l[300..<700]))
        #expect(t.stagedLeaves == 400)
        #expect(try fileHashes(dir, "00") == 300)
        #expect(try fileHashes(dir, "08") == 1)
        // Reads span the file and memory, and tiles completed in memory.
        #expect(try t.leaves(from: 250, count: 300) == Array(l[250..<550]))
        #expect(try t.leaf(699) == l[699])
        #expect(try t.leaves(at: [3, 299, 300, 650]) == [3: l[3], 299: l[299], 300: l[300], 650: l[650]])
        for n in [1, 255, 256, 300, 511, 512, 513, 700] {
            #expect(try t.root(at: UInt64(n)) == Merkle.root(l[0..<n]), "root at \(n)")
        }
        // A reader of the files alone sees what was flushed.
        #expect(try TreeStore(directory: dir, readOnly: true).size == 300)
        try t.flush()
        #expect(t.stagedLeaves == 0)
        #expect(try fileHashes(dir, "00") == 700)
        #expect(try fileHashes(dir, "08") == 2)
        let reread = try TreeStore(directory: dir, readOnly: true)
        #expect(try reread.root(at: 700) == Merkle.root(l[...]))
        // More leaves after a flush land after the flushed ones.
        try t.append(leaves(800).suffix(100).map { $0 })
        try t.sync()
        #expect(try fileHashes(dir, "00") == 800)
        #expect(try TreeStore(directory: dir, readOnly: true).root(at: 800) == Merkle.root(leaves(800)[...]))
    }

    /// What is staged stays bounded: past `maxStagedBytes`, an append writes it out first.
    @Test func stagedHashesAreBounded() throws {
        let dir = temporaryDirectory("tree")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let l = leaves(3 * TreeStore.maxStagedBytes / 32)
        let t = try TreeStore(directory: dir)
        var most: UInt64 = 0
        for c in stride(from: 0, to: l.count, by: 1000) {
            try t.append(Array(l[c..<min(l.count, c + 1000)]))
            most = max(most, t.stagedLeaves)
        }
        #expect(most <= UInt64(TreeStore.maxStagedBytes / 32), "\(most) leaves staged at once")
        #expect(try fileHashes(dir, "00") > 0)
        #expect(try t.root(at: UInt64(l.count)) == Merkle.root(l[...]))
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
