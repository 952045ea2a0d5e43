import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real RFC 3161 time-stamping authority on loopback: `scripts/tsa-server` (`openssl ts
/// -reply` behind HTTP POST), with its own CA made in `dir`. Without python3 or openssl it
/// fails, saying what to install: it never skips.
public final class TimeStampAuthority: @unchecked Sendable {
    /// Where it answers, `http://127.0.0.1:PORT/`.
    public let url: String
    /// The PEM file of its CA (what a verifier trusts).
    public let caFile: String
    /// Its signing certificate.
    public let certFile: String
    private let process: ChildProcess

    public struct Missing: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts one whose certificates live in `dir` (made at the first start, kept after).
    public init(dir: String, file: String = #filePath) throws {
        for b in ["/usr/bin/python3", "/usr/bin/openssl"] where !FileManager.default.isExecutableFile(atPath: b) {
            throw Missing(
                description:
                    "\(b) is missing: the time-stamp tests run scripts/tsa-server (openssl ts -reply on loopback); apt-get install -y python3 openssl (.ci/run does)"
            )
        }
        let root = URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let out = dir + ".out"
        FileManager.default.createFile(atPath: out, contents: nil)
        guard let h = FileHandle(forWritingAtPath: out) else { throw Missing(description: "cannot create \(out)") }
        defer { try? h.close() }
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = [root.appendingPathComponent("scripts/tsa-server").path, dir, "0"]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = h
        p.standardError = h
        try p.run()
        process = p
        var line = ""
        for _ in 0..<300 {
            line = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            if line.hasPrefix("tsa ") && line.hasSuffix("\n") || !p.isRunning { break }
            usleep(50_000)
        }
        let parts = line.split(whereSeparator: \.isWhitespace)
        guard parts.count == 4, parts[0] == "tsa" else {
            p.terminate()
            throw Missing(description: "scripts/tsa-server did not start: \(line.suffix(800))")
        }
        url = String(parts[1])
        caFile = String(parts[3])
        certFile = dir + "/tsa.crt"
    }

    /// Stops it (the certificates stay in its directory).
    public func stop() {
        process.terminate()
        process.waitUntilExit()
    }

    deinit { if process.isRunning { stop() } }
}
