import AuditBase
import Foundation
import SegmentStore
import TestSupport
import Testing

/// `seal_level` (`--seal-level`): the zstd level the daemon seals segments at reaches the
/// seal, and a level outside zstd's 1...19 is refused before anything starts.
@Suite(.serialized) struct SealLevelTests {
    /// Bytes stored per raw byte in the first segment `d` seals. A ratio, not a size: it needs
    /// one sealed segment, where a size compared segments whose contents depend on how the
    /// writer's batches fell into group commits (a segment rotates after the group that
    /// filled it).
    func sealedRatio(_ d: Daemon) async throws -> Double {
        let dir = DataDirectory(d.data).segments
        let first = try await eventually(seconds: 60) {
            try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".seg") }.min()
        }
        guard let first else { throw DaemonFailed(message: "no segment was sealed within 60 s") }
        let path = dir + "/" + first
        let raw = try SealedSegment(path: path).footer.blocks.reduce(0) { $0 + Int($1.rawLength) }
        let stored = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        print("seal level: \(first) keeps \(stored) of \(raw) raw bytes")
        return Double(stored) / Double(raw)
    }

    @Test func theLevelSetReachesTheSeal() async throws {
        // Text that compresses, unlike the same line again: words a generator picks.
        let words = (0..<64).map { "w\($0 * 7919 % 1000)" + String(repeating: "ab", count: $0 % 5) }
        var x: UInt64 = 1
        let input =
            (0..<3000).map { i in
                let note = (0..<12).map { _ in
                    x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    return words[Int(x >> 58)]
                }.joined(separator: " ")
                return event(org: "org_\(i % 3)", i: i, extra: #","note":"\#(note)""#)
            }.joined(separator: "\n") + "\n"
        var ratio: [Int32: Double] = [:]
        for level: Int32 in [1, 19] {
            let d = Daemon("seal-level-\(level)", args: ["--segment-bytes", "262144", "--seal-level", "\(level)"])
            defer { d.cleanup() }
            try d.start()
            let (s, _, err) = try d.ctl(["append", "--socket", d.socket], stdin: input)
            #expect(s == 0, "\(err)")
            ratio[level] = try await sealedRatio(d)
            #expect(d.stop() == 0)
        }
        let fast = try #require(ratio[1])
        let hard = try #require(ratio[19])
        #expect(hard < fast * 0.95, "level 19 kept \(hard) bytes per raw byte, level 1 \(fast)")
    }

    @Test func aLevelZstdDoesNotHaveIsRefused() throws {
        for bad in ["0", "20"] {
            let (s, out) = try runProgram(Daemon.product("auditd"), ["--check-config", "--seal-level", bad])
            #expect(s != 0 && out.contains("seal_level \(bad) must be between 1 and 19"), "\(out)")
        }
    }
}
