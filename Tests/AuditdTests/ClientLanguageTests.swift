import Foundation
import Testing

/// Issue 11: the clients in other languages, each tested against the real daemon.
@Suite struct ClientLanguageTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test func thePythonClientAppendsPipelinesAndRetriesAcrossARestart() async throws {
        let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let python else {
            Issue.record("python3 is missing: install it (apt-get install -y python3; .ci/run and scripts/setup do)")
            return
        }
        var env = ProcessInfo.processInfo.environment
        env["AUDITD_BIN"] = Daemon.product("auditd")
        let (status, text) = try await runProgramOffPool(
            python, ["-m", "unittest", "discover", "-s", Self.repo + "/clients/python/tests", "-v"], environment: env)
        #expect(status == 0 && text.contains("OK"), "python client tests:\n\(text)")
        #expect(
            text.contains("Ran 10 tests") && text.contains("test_the_specs_wire_vectors")
                && text.contains("test_a_writer_follows_the_logs_key_successions")
                && text.contains("test_a_kept_checkpoint_catches_a_rollback_and_a_fork")
                && text.contains("test_a_feed_consumer_catches_a_rollback_and_a_fork"), "\(text)")
    }

    @Test func theGoClientAppendsPipelinesAndRetriesAcrossARestart() async throws {
        let go = ["/usr/bin/go", "/usr/local/go/bin/go", "/usr/lib/go/bin/go"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let go else {
            Issue.record("go is missing: install it (apt-get install -y golang-go; .ci/run and scripts/setup do)")
            return
        }
        var env = ProcessInfo.processInfo.environment
        env["AUDITD_BIN"] = Daemon.product("auditd")
        env["GOFLAGS"] = "-mod=mod"
        env["GOPROXY"] = "off"
        if env["HOME"] == nil { env["HOME"] = NSTemporaryDirectory() }
        let (status, text) = try await runProgramOffPool(
            go, ["test", "./...", "-count=1", "-v"], environment: env, in: Self.repo + "/clients/go")
        #expect(
            status == 0 && text.contains("--- PASS: TestRetryAcrossARestartStoresEachKeyedEntryOnce")
                && text.contains("--- PASS: TestTheSpecsWireVectors")
                && text.contains("--- PASS: TestAKeptCheckpointCatchesARollbackAndAFork")
                && text.contains("--- PASS: TestConsistencyProofsOfTheRealLog")
                && text.contains("--- PASS: TestAFeedConsumerCatchesARollbackAForkAndAGap")
                && text.contains("--- PASS: TestAWriterFollowsTheLogsKeySuccessions"),
            "go client tests:\n\(text)")
    }
}
