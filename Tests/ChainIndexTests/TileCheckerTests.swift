import Foundation
import LogProofs
import LogTree
import Testing

@testable import AuditBase
@testable import Verification

/// The verifier's root of the leaves so far comes from whole tiles' roots (as subtrees of a
/// compact range) and the current tile's leaves: at every size, RFC 9162's root of them all.
@Suite struct TileCheckerTests {
    @Test func theRootAtEverySizeIsTheTreesRoot() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tree = try TreeStore(directory: dir)
        var tiles = TileChecker(tree: tree)
        var leaves: [Hash] = []
        #expect(tiles.root() == Merkle.emptyRoot)
        // Past two whole tiles and into the third: every size, tile boundaries included.
        for i in 0..<(2 * ChainFormat.tileWidth + 37) {
            let leaf = SHA256.hash(Array("leaf \(i)".utf8))
            leaves.append(leaf)
            #expect(try tiles.append(leaf) == nil)
            #expect(tiles.root() == Merkle.root(leaves[...]), "size \(leaves.count)")
        }
    }

    @Test func aStoredTileThatDisagreesWithItsLeavesIsNamed() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tree = try TreeStore(directory: dir)
        let leaves = (0..<ChainFormat.tileWidth).map { SHA256.hash(Array("leaf \($0)".utf8)) }
        try tree.append(leaves)
        var tiles = TileChecker(tree: tree)
        var other = leaves
        other[7] = SHA256.hash(Array("another leaf".utf8))
        var messages: [String] = []
        for leaf in other { if let m = try tiles.append(leaf) { messages.append(m) } }
        #expect(messages.count == 1)
        #expect(messages.first?.contains("does not match the entries beneath it") == true)
    }
}
