import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The S3-compatible store the archive tests use: the one named by `AUDITLOG_S3_ENDPOINT`,
/// `AUDITLOG_S3_ACCESS_KEY_ID`, `AUDITLOG_S3_SECRET_ACCESS_KEY` (and `AUDITLOG_S3_REGION`) if
/// set, or else a single-node Ceph RADOS Gateway that `scripts/ceph-rgw` starts on loopback
/// once per test run and stops when the run ends. Without Ceph's packages it fails, saying how
/// to install them: it never skips.
public enum ObjectStore {
    nonisolated(unsafe) private static var started: Result<[String: String], Error>?
    private static let lock = NSLock()

    public struct Missing: Error, CustomStringConvertible {
        public var description: String
    }

    /// `AUDITLOG_S3_*` for the store.
    public static func environment(file: String = #filePath) throws -> [String: String] {
        let e = ProcessInfo.processInfo.environment
        if let ep = e["AUDITLOG_S3_ENDPOINT"], let ak = e["AUDITLOG_S3_ACCESS_KEY_ID"], let sk = e["AUDITLOG_S3_SECRET_ACCESS_KEY"] {
            return ["AUDITLOG_S3_ENDPOINT": ep, "AUDITLOG_S3_ACCESS_KEY_ID": ak, "AUDITLOG_S3_SECRET_ACCESS_KEY": sk, "AUDITLOG_S3_REGION": e["AUDITLOG_S3_REGION"] ?? "default"]
        }
        return try lock.withLock {
            if let started { return try started.get() }
            let r = Result { try start(file: file) }
            started = r
            return try r.get()
        }
    }

    /// What auditd, auditctl and `S3Settings` read (`AWS_*`, path-style) for the store.
    public static func clientEnvironment(file: String = #filePath) throws -> [String: String] {
        let s = try environment(file: file)
        return ["AWS_ACCESS_KEY_ID": s["AUDITLOG_S3_ACCESS_KEY_ID"] ?? "", "AWS_SECRET_ACCESS_KEY": s["AUDITLOG_S3_SECRET_ACCESS_KEY"] ?? "",
                "AWS_REGION": s["AUDITLOG_S3_REGION"] ?? "default", "AWS_ENDPOINT_URL_S3": s["AUDITLOG_S3_ENDPOINT"] ?? "", "AUDITLOG_S3_PATH_STYLE": "1"]
    }

    static func start(file: String) throws -> [String: String] {
        let root = URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("scripts/ceph-rgw").path
        for b in ["/usr/bin/ceph-mon", "/usr/bin/ceph-osd", "/usr/bin/radosgw"] where !FileManager.default.isExecutableFile(atPath: b) {
            throw Missing(description: "\(b) is missing: the S3 archive tests run against a Ceph RADOS Gateway on loopback; install Debian's ceph-mon ceph-osd radosgw ceph-common (scripts/setup and .ci/run do), or point AUDITLOG_S3_ENDPOINT and its keys at another store")
        }
        let dir = NSTemporaryDirectory() + "auditlog-rgw-\(getpid())"
        let port = 20_000 + Int(getpid() % 20_000)
        // system(3), not Process: the script's daemons outlive it, and Foundation's Process
        // waits for them on a thread this lock may be starving.
        let envPath = dir + ".env", errPath = dir + ".stderr"
        let status = system("/bin/bash '\(script)' start '\(dir)' \(port) >'\(envPath)' 2>'\(errPath)' </dev/null")
        let text = (try? String(contentsOfFile: envPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            throw Missing(description: "scripts/ceph-rgw could not start the gateway (status \(status)): \(text.suffix(800)) \(err.suffix(1200))")
        }
        stopDir = dir
        stopScript = script
        atexit {
            guard let d = ObjectStore.stopDir, let s = ObjectStore.stopScript else { return }
            _ = system("/bin/bash '\(s)' stop '\(d)' >/dev/null 2>&1")
        }
        var env: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("AUDITLOG_S3_") {
            let kv = line.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { env[String(kv[0])] = String(kv[1]) }
        }
        guard env["AUDITLOG_S3_ENDPOINT"] != nil else { throw Missing(description: "scripts/ceph-rgw printed no endpoint: \(text.suffix(800))") }
        return env
    }

    nonisolated(unsafe) static var stopDir: String?
    nonisolated(unsafe) static var stopScript: String?
}
