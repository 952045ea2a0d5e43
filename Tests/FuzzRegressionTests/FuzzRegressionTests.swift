import Foundation
import FuzzHarness
import Testing

/// Every input a fuzzer ever crashed on (FuzzTesting/FailCases/TARGET/) and every seed
/// (FuzzTesting/Corpus/TARGET/) goes through its target's body again: a trap here is a
/// regression, and it fails the test run.
@Suite struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("FuzzTesting").path

    static func inputs(_ folder: String, _ target: String) -> [String] {
        let dir = root + "/" + folder + "/" + target
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map { dir + "/" + $0 }
    }

    @Test(arguments: FuzzHarness.targets.keys.sorted())
    func failCasesAndSeedsNeverTrap(target: String) throws {
        let body = try #require(FuzzHarness.targets[target])
        let seeds = Self.inputs("Corpus", target)
        #expect(!seeds.isEmpty, "FuzzTesting/Corpus/\(target) has no seeds: run FuzzTesting/make-seeds")
        for path in Self.inputs("FailCases", target) + seeds {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            data.withUnsafeBytes { body($0) }
        }
    }
}
