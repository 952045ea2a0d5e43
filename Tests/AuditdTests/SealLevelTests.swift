import AuditBase
import Foundation
import TestSupport
import Testing

/// `seal_level` (`--seal-level`): the zstd level the daemon seals segments at reaches the
/// seal, and a level outside zstd's 1...19 is refused before anything starts.
@Suite(.serialized) struct SealLevelTests {
    /// Bytes of the first `n` sealed segments of `d`, once that many are sealed.
    func sealedBytes(_ d: Daemon, first n: Int) async throws -> Int {
        let dir = DataDirectory(d.data).segments
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let sealed = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".seg") }
                .sorted()
            if sealed.count >= n {
                return try sealed.prefix(n).reduce(0) {
                    $0 + ((try FileManager.default.attributesOfItem(atPath: dir + "/" + $1)[.size] as? Int) ?? 0)
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw DaemonFailed(message: "fewer than \(n) segments were sealed within 60 s")
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
        var bytes: [Int32: Int] = [:]
        for level: Int32 in [1, 19] {
            let d = Daemon("seal-level-\(level)", args: ["--segment-bytes", "262144", "--seal-level", "\(level)"])
            defer { d.cleanup() }
            try d.start()
            let (s, _, err) = try d.ctl(["append", "--socket", d.socket], stdin: input)
            #expect(s == 0, "\(err)")
            bytes[level] = try await sealedBytes(d, first: 3)
            #expect(d.stop() == 0)
        }
        let fast = try #require(bytes[1])
        let hard = try #require(bytes[19])
        #expect(hard < fast * 95 / 100, "level 19 kept \(hard) bytes, level 1 \(fast)")
    }

    @Test func aLevelZstdDoesNotHaveIsRefused() throws {
        for bad in ["0", "20"] {
            let (s, out) = try runProgram(Daemon.product("auditd"), ["--check-config", "--seal-level", bad])
            #expect(s != 0 && out.contains("seal_level \(bad) must be between 1 and 19"), "\(out)")
        }
    }
}
