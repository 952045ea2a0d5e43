import AuditBase
import Foundation
import TestSupport
import Testing

@testable import Archive

#if canImport(Glibc)
import Glibc
#endif

/// Issue 12: `auditctl archive run` into an S3 bucket, killed (SIGKILL) mid-upload and again
/// between the upload and retiring the hot files: each time one verified copy is in charge,
/// nothing is lost, and the next run finishes the job.
extension ArchiveCLITests {
    @Test func s3CrashesMidUploadAndAfterTheCopyLoseNothing() throws {
        let (root, data) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var env = try ObjectStore.clientEnvironment()
        env["AUDITLOG_S3_CACHE"] = root + "/cache"
        let bucket = "crash-\(UUID().uuidString.prefix(8).lowercased())"
        let client = S3Client(try S3Settings(url: "s3://\(bucket)", environment: env))
        try client.expect("creating bucket", "PUT", key: nil, headers: [("x-amz-bucket-object-lock-enabled", "true")])
        let url = "s3://\(bucket)/log"
        let backend = try S3Backend(try S3Settings(url: url, environment: env), cache: root + "/check")
        let sealed = {
            try FileManager.default.contentsOfDirectory(atPath: DataDirectory(data).segments).filter {
                $0.hasSuffix(".seg")
            }.count
        }
        let before = try sealed()
        #expect(before >= 3)

        /// Runs `archive run` with `hook` set and kills it once `ready` holds.
        func crash(_ hook: String, when ready: () throws -> Bool) throws {
            let p = ChildProcess()
            p.executableURL = URL(fileURLWithPath: Self.product("auditctl"))
            p.arguments = ["archive", "run", data, "--archive", url, "--hot-window", "0"]
            p.environment = ProcessInfo.processInfo.environment.merging(env.merging([hook: "30"]) { $1 }) { $1 }
            p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            p.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try p.run()
            var waited = 0
            while try !ready(), waited < 400 {
                usleep(50_000)
                waited += 1
            }
            usleep(200_000)
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }

        // 1. Killed after the first bundle's files went up, before its commit: no bundle
        //    exists, the hot copy is in charge.
        try crash("AUDITLOG_TEST_PAUSE_BEFORE_COMMIT") { !(try backend.versions(prefix: "log/").isEmpty) }
        #expect(try backend.list().isEmpty)
        #expect(try sealed() == before)
        var (s, out) = try ctl(["verify", data, "--quiet"])
        #expect(s == 0 && out.contains("OK: 400 entries"), "\(out)")

        // 2. Killed after a bundle is committed and verified, before the hot files go: both
        //    copies exist, the hot one in charge.
        try crash("AUDITLOG_TEST_PAUSE_AFTER_COPY") { !(try backend.list().isEmpty) }
        #expect(try backend.list().count == 1)
        #expect(try sealed() == before)
        (s, out) = try ctl(["verify", data, "--quiet"])
        #expect(s == 0, "\(out)")

        // 3. The next run finishes, reusing the committed bundle; everything verifies.
        (s, out) = try ctl(["archive", "run", data, "--archive", url, "--hot-window", "0"], env: env)
        #expect(s == 0, "\(out)")
        #expect(try sealed() == 0)
        #expect(try backend.list().count == before)
        (s, out) = try ctl(["archive", "verify", data, "--archive", url], env: env)
        #expect(s == 0 && out.components(separatedBy: "OK: ").count - 1 == before, "\(out)")
        (s, out) = try ctl(["verify", data, "--quiet"])
        #expect(s == 0, "\(out)")
    }
}
