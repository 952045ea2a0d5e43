import Archive
import ArgumentParser
import AuditBase
import Foundation

/// Locked PUTs of tail-object-sized objects through the two S3 transports, interleaved in one
/// run: `PlainHTTP` (what auditd uses for an `http://` endpoint) and URLSession.
struct S3Put: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "s3-put",
        abstract: "PUT latency of the object store through auditd's two S3 transports, side by side.")

    @Option(help: "s3://BUCKET[/PREFIX] (credentials and endpoint from the environment, as auditd reads them)")
    var url: String
    @Option(help: "PUTs per transport") var count = 500
    @Option(help: "object size in bytes") var size = 8192

    func run() throws {
        let settings = try S3Settings(url: url)
        let clients = [("plain", S3Client(settings)), ("urlsession", S3Client(settings, foundation: true))]
        var times: [[Double]] = [[], []]
        let body = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let f = ISO8601DateFormatter()
        let until = f.string(from: Date().addingTimeInterval(3600))
        let headers = [
            ("x-amz-object-lock-mode", "COMPLIANCE"), ("x-amz-object-lock-retain-until-date", until),
            ("Content-MD5", S3Client.contentMD5(body)),
        ]
        let prefix = settings.prefix.isEmpty ? "" : settings.prefix + "/"
        for i in 0..<(count + 20) {
            for (k, (name, c)) in clients.enumerated() {
                let t0 = ContinuousClock.now
                try c.expect("PUT", "PUT", key: "\(prefix)bench/\(name)/\(i)", headers: headers, body: body)
                let d = ContinuousClock.now - t0
                // The first 20 of each warm the connection and the gateway.
                if i >= 20 { times[k].append(Double(d.components.attoseconds) / 1e18 + Double(d.components.seconds)) }
            }
        }
        for (k, (name, _)) in clients.enumerated() {
            let xs = times[k]
            print(
                "\(name): \(xs.count) locked PUTs of \(size) bytes: p50 \(ms(percentile(xs, 0.5))), p90 \(ms(percentile(xs, 0.9))), p99 \(ms(percentile(xs, 0.99))), mean \(ms(xs.reduce(0, +) / Double(xs.count)))"
            )
        }
    }
}
