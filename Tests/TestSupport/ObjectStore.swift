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
        if let ep = e["AUDITLOG_S3_ENDPOINT"], let ak = e["AUDITLOG_S3_ACCESS_KEY_ID"],
            let sk = e["AUDITLOG_S3_SECRET_ACCESS_KEY"]
        {
            return [
                "AUDITLOG_S3_ENDPOINT": ep, "AUDITLOG_S3_ACCESS_KEY_ID": ak, "AUDITLOG_S3_SECRET_ACCESS_KEY": sk,
                "AUDITLOG_S3_REGION": e["AUDITLOG_S3_REGION"] ?? "default",
            ]
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
        return [
            "AWS_ACCESS_KEY_ID": s["AUDITLOG_S3_ACCESS_KEY_ID"] ?? "",
            "AWS_SECRET_ACCESS_KEY": s["AUDITLOG_S3_SECRET_ACCESS_KEY"] ?? "",
            "AWS_REGION": s["AUDITLOG_S3_REGION"] ?? "default", "AWS_ENDPOINT_URL_S3": s["AUDITLOG_S3_ENDPOINT"] ?? "",
            "AUDITLOG_S3_PATH_STYLE": "1",
        ]
    }

    static func start(file: String) throws -> [String: String] {
        let root = URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let script = root.appendingPathComponent("scripts/ceph-rgw").path
        for b in ["/usr/bin/ceph-mon", "/usr/bin/ceph-osd", "/usr/bin/radosgw"]
        where !FileManager.default.isExecutableFile(atPath: b) {
            throw Missing(
                description:
                    "\(b) is missing: the S3 archive tests run against a Ceph RADOS Gateway on loopback; install Debian's ceph-mon ceph-osd radosgw ceph-common (scripts/setup and .ci/run do), or point AUDITLOG_S3_ENDPOINT and its keys at another store"
            )
        }
        let dir = NSTemporaryDirectory() + "auditlog-rgw-\(getpid())"
        guard let port = freePortPair(preferring: 10_000 + Int(getpid() % 11_000) * 2) else {
            throw Missing(
                description: "no two free loopback ports below the ephemeral range for the Ceph gateway and monitor")
        }
        // Through ChildProcess, which closes every descriptor above 2 in the child: the
        // script's daemons outlive the test run, and with system(3) they inherited every pipe
        // the test process had open at that moment (a concurrent test's child's stdout among
        // them), so that test's read to end of file never ended.
        let envPath = dir + ".env"
        let errPath = dir + ".stderr"
        let status = try runScript(script, ["start", dir, String(port)], stdout: envPath, stderr: errPath)
        let text = (try? String(contentsOfFile: envPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            throw Missing(
                description:
                    "scripts/ceph-rgw could not start the gateway (status \(status)): \(text.suffix(800)) \(err.suffix(1200))"
            )
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
        guard env["AUDITLOG_S3_ENDPOINT"] != nil else {
            throw Missing(description: "scripts/ceph-rgw printed no endpoint: \(text.suffix(800))")
        }
        return env
    }

    /// Runs `bash script args` to completion with its output in two files; its exit status.
    public static func runScript(_ script: String, _ args: [String], stdout: String, stderr: String) throws -> Int32 {
        for path in [stdout, stderr] {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw Missing(description: "cannot create \(path) for scripts/ceph-rgw's output")
            }
        }
        guard let out = FileHandle(forWritingAtPath: stdout), let err = FileHandle(forWritingAtPath: stderr) else {
            throw Missing(description: "cannot open \(stdout) or \(stderr) for scripts/ceph-rgw's output")
        }
        defer {
            try? out.close()
            try? err.close()
        }
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script] + args
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = out
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// A port `p` such that `p` and `p + 1` (the gateway's and its monitor's) are free on
    /// 127.0.0.1 now, tried from `preferring` up, all in 10000..<32000: below Linux's ephemeral
    /// range (32768 up), where an outgoing connection of a concurrent test could take a port
    /// between this check and the gateway's bind.
    public static func freePortPair(preferring: Int) -> Int? {
        let low = 10_000
        let span = 22_000
        for attempt in 0..<200 {
            let p = low + ((preferring - low + attempt * 2) % span + span) % span
            if isFree(p), isFree(p + 1) { return p }
        }
        return nil
    }

    /// Whether a TCP listener can bind 127.0.0.1:`port` right now.
    public static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: port)).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    nonisolated(unsafe) static var stopDir: String?
    nonisolated(unsafe) static var stopScript: String?
}
