import ArgumentParser
import AuditClient
import AuditWire
import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `socket`: N concurrent writers against a running auditd, each pipelining batches of entries
/// over its own connection; durable entries/s and per-entry ack latency (send → durable ack).
struct Socket: AsyncParsableCommand {
    @Option(help: "auditd's ingest socket.") var socket = "./auditd.sock"
    @Option(help: "NDJSON events (from genevents.py).") var events: String
    @Option(help: "Concurrent connections.") var writers = 8
    @Option(help: "Entries per pipelined batch.") var batch = 128
    @Option(help: "Batches in flight per connection.") var depth = 4
    @Option(help: "Stop after this many entries.") var count: Int?
    @Option(help: "Total target rate, entries/s (default: as fast as possible).") var rate: Double?

    func run() async throws {
        let lines = try loadLines(events, limit: count)
        let lat = LatencyLog()
        let errors = LatencyLog()
        let per = (lines.count + writers - 1) / writers
        let start = Date()
        try await withThrowingTaskGroup(of: Void.self) { g in
            for w in 0..<writers {
                let slice = Array(lines[min(lines.count, w * per)..<min(lines.count, (w + 1) * per)])
                g.addTask {
                    let client = try await AuditClient.connect(socketPath: socket)
                    let interval = rate.map { Double(batch) / ($0 / Double(writers)) }
                    try await withThrowingTaskGroup(of: Void.self) { inner in
                        var i = 0
                        var inFlight = 0
                        var next = Date()
                        while i < slice.count {
                            if inFlight >= depth {
                                try await inner.next()
                                inFlight -= 1
                            }
                            if let interval {
                                let wait = next.timeIntervalSinceNow
                                if wait > 0 { try await Task.sleep(for: .milliseconds(Int(wait * 1000))) }
                                next = next.addingTimeInterval(interval)
                            }
                            let chunk = Array(slice[i..<min(slice.count, i + batch)])
                            i += batch
                            inFlight += 1
                            inner.addTask {
                                let t0 = Date()
                                let rs = try await client.append(batch: chunk)
                                let dt = Date().timeIntervalSince(t0)
                                for r in rs {
                                    if case .success = r { lat.add(dt) } else { errors.add(0) }
                                }
                            }
                        }
                        try await inner.waitForAll()
                    }
                    await client.close()
                }
            }
            try await g.waitForAll()
        }
        let secs = Date().timeIntervalSince(start)
        let l = lat.values
        print(
            "socket: \(l.count) durable entries by \(writers) connections (batch \(batch), depth \(depth)\(rate.map { ", target \(Int($0))/s" } ?? "")): \(String(format: "%.2f", secs)) s, \(Int(Double(l.count) / secs)) entries/s; \(errors.values.count) refused"
        )
        print(
            "ack latency per entry: p50 \(ms(percentile(l, 0.5))), p99 \(ms(percentile(l, 0.99))), max \(ms(l.max() ?? 0))"
        )
    }
}

/// `http-query`: org pages through the read port (operator token): newest 100 with a filter.
struct HTTPQuery: AsyncParsableCommand {
    @Option var url = "http://127.0.0.1:8650"
    @Option(help: "An operator token.") var token: String
    @Option(help: "Orgs to query, comma-separated.") var orgs: String
    @Option var count = 500
    @Option(help: "Also time a free-text search (`q=`) for this text, one page per org (use text no entry holds).")
    var text: String?

    func run() async throws {
        let list = orgs.split(separator: ",").map(String.init)
        var filtered: [Double] = []
        var plain: [Double] = []
        var searched: [Double] = []
        // Per org, both kinds of page: the goal is for every org, busy or quiet.
        var byOrg: [String: [Double]] = [:]
        for k in 0..<count {
            let org = list[k % list.count]
            var paths = [
                ("/v1/orgs/\(org)/entries?limit=100&outcome=success", 0), ("/v1/orgs/\(org)/entries?limit=100", 1),
            ]
            if let text, k < list.count { paths.append(("/v1/orgs/\(org)/entries?limit=100&q=\(text)", 2)) }
            for (path, into) in paths {
                var req = URLRequest(url: URL(string: url + path)!)
                req.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
                let t0 = Date()
                let (_, r) = try await URLSession.shared.data(for: req)
                guard (r as? HTTPURLResponse)?.statusCode == 200 else {
                    throw ValidationError("HTTP \((r as? HTTPURLResponse)?.statusCode ?? 0) for \(path)")
                }
                let took = Date().timeIntervalSince(t0)
                switch into {
                case 0:
                    filtered.append(took)
                    byOrg[org, default: []].append(took)
                case 1:
                    plain.append(took)
                    byOrg[org, default: []].append(took)
                default:
                    searched.append(took)
                    print("q=\(text ?? "") for \(org): \(ms(took)) ms")
                }
            }
        }
        for org in list {
            let t = byOrg[org] ?? []
            print(
                "  \(org): \(t.count) pages, p50 \(ms(percentile(t, 0.5))) p99 \(ms(percentile(t, 0.99))) max \(ms(t.max() ?? 0))"
            )
        }
        print(
            "read port, newest 100 with a filter: p50 \(ms(percentile(filtered, 0.5))) p99 \(ms(percentile(filtered, 0.99))); newest 100: p50 \(ms(percentile(plain, 0.5))) p99 \(ms(percentile(plain, 0.99)))"
        )
    }
}
