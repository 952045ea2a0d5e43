import ArgumentParser
import AuditBase
import AuditEntries
import AuditIndex
import ChainIndex
import Foundation

/// `compare`: the log and its obvious alternative (`SQLitePeer`) on the same events, in one
/// run, in process (no socket, no HTTP: the storage engines side by side), printing each figure
/// for both and the ratio.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "The log against a hash-chained SQLite table (WAL, synchronous=FULL): ingest, latency, queries, bytes on disk."
    )

    @Option(help: "NDJSON events (from genevents.py).") var events: String
    @Option(help: "Scratch directory (created; both systems write under it).") var dir: String
    @Option(help: "Entries for the throughput runs.") var count = 200_000
    @Option(help: "Entries for the one-in-flight latency runs.") var latencyCount = 3_000
    @Option(help: "Org queries per system.") var queries = 500

    func run() throws {
        let lines = try loadLines(events, limit: count)
        let raw = lines.reduce(0) { $0 + $1.count }
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // figure, log, peer, log/peer (higher is better for the log)
        var rows: [(String, String, String, Double?)] = []
        func fmt(_ x: Double) -> String { x >= 100 ? String(Int(x.rounded())) : String(format: "%.2f", x) }

        // 1. Durable entries/s, best configuration of each.
        let log = try Ledger(directory: dir + "/log", signer: try signer(for: dir + "/log"))
        let ours = try Bench.throughput(lines: lines, writers: 8, batch: 128, depth: 4) { chunk, done in
            log.append(chunk) { _ in done() }
        }
        let peer100 = try SQLitePeer(path: dir + "/peer.db", connections: 8)
        let p8 = try Bench.throughput(lines: lines, writers: 8, batch: 100, depth: 1) { chunk, done in
            try? peer100.append(chunk, writer: Bench.thread)
            done()
        }
        rows.append(
            (
                "durable entries/s, best configuration (log: 8 writers × batch 128 × depth 4; SQLite: 8 writers × 100 per transaction)",
                fmt(ours.rate), fmt(p8.rate), ours.rate / p8.rate
            ))

        // 2. A lone writer with one entry in flight.
        let latLog = try Ledger(directory: dir + "/lat", signer: try signer(for: dir + "/lat"))
        let lone = try Bench.loneWriter(lines: Array(lines.prefix(latencyCount))) { e in
            _ = try latLog.appendAndWait([e])
        }
        try latLog.close()
        let latPeer = try SQLitePeer(path: dir + "/lat.db", connections: 1)
        let loneP = try Bench.loneWriter(lines: Array(lines.prefix(latencyCount))) { e in
            try latPeer.append([e], writer: 0)
        }
        rows.append(
            (
                "lone writer, one entry in flight: p50 ack (ms; entries/s)",
                "\(fmt(lone.p50 * 1000)) (\(fmt(lone.rate))/s)",
                "\(fmt(loneP.p50 * 1000)) (\(fmt(loneP.rate))/s)", loneP.p50 / lone.p50
            ))

        // 3. 64 writers, one entry in flight each.
        let manyLines = Array(lines.prefix(min(lines.count, 50_000)))
        let manyLog = try Ledger(directory: dir + "/many", signer: try signer(for: dir + "/many"))
        let many = try Bench.throughput(lines: manyLines, writers: 64, batch: 1, depth: 1) { chunk, done in
            _ = try? manyLog.appendAndWait(chunk)
            done()
        }
        try manyLog.close()
        let manyPeer = try SQLitePeer(path: dir + "/many.db", connections: 64)
        let manyP = try Bench.throughput(lines: manyLines, writers: 64, batch: 1, depth: 1) { chunk, done in
            try? manyPeer.append(chunk, writer: Bench.thread)
            done()
        }
        rows.append(
            (
                "64 writers, one entry in flight each: entries/s (p99 ms)",
                "\(fmt(many.rate)) (\(fmt(many.p99 * 1000)))",
                "\(fmt(manyP.rate)) (\(fmt(manyP.p99 * 1000)))", many.rate / manyP.rate
            ))

        // 4. Org queries on the throughput data sets, busy to quiet orgs.
        try log.sealNow()
        try peer100.checkpoint()
        let orgs = try peer100.orgNames(limit: 200)
        // Each system stamped the events when it took them: a range is the same fraction of each one's span.
        let (first, last) = try peer100.timeSpan()
        func stamp(_ seq: UInt64) throws -> Int64 {
            CanonicalScan.topLevelString(try log.entry(seq: seq).content, key: "received_at").flatMap(Timestamp.parse)
                ?? 0
        }
        let (lfirst, llast) = (try stamp(0), try stamp(log.size - 1))
        var rng = SystemRandomNumberGenerator()
        // The same orgs and the same fractions of each system's span, for each system in a pass
        // of its own: the log, the peer, and the peer checking each row it reads as the log
        // checks each entry (no system finds its pages cached by the one before).
        let plan = (0..<queries).map { k in (orgs[(k * 7) % orgs.count], Double.random(in: 0...1, using: &rng)) }
        func pass(
            _ page: (String) throws -> Int, _ range: (String, Double) throws -> Int
        ) rethrows -> (
            pages: [Double], ranges: [Double], rows: (Int, Int)
        ) {
            var (pages, ranges, rows) = ([Double](), [Double](), (0, 0))
            for (org, f) in plan {
                var t0 = Date()
                rows.0 += try page(org)
                pages.append(Date().timeIntervalSince(t0))
                t0 = Date()
                rows.1 += try range(org, f)
                ranges.append(Date().timeIntervalSince(t0))
            }
            return (pages, ranges, rows)
        }
        let logPass = try pass(
            { org in
                let hits = try log.query(org: org, filter: QueryFilter(outcome: .success), limit: 100)
                return try log.entries(seqs: hits.map(\.seq)).count
            },
            { org, f in
                let from = lfirst + Int64(Double(llast - lfirst) * f)
                let r = try log.query(
                    org: org, filter: QueryFilter(from: from, to: llast + 1), newestFirst: false, limit: 100)
                return try log.entries(seqs: r.map(\.seq)).count
            })
        func peerPass(checked: Bool) throws -> (pages: [Double], ranges: [Double], rows: (Int, Int)) {
            try pass(
                { try peer100.newest(org: $0, outcome: "success", checked: checked) },
                {
                    try peer100.range(
                        org: $0, from: first + Int64(Double(last - first) * $1), to: last + 1, checked: checked)
                })
        }
        let peer = try peerPass(checked: false)
        let checked = try peerPass(checked: true)
        let (qa, ra, qb, rb, qc, rc) = (
            logPass.pages, logPass.ranges, peer.pages, peer.ranges, checked.pages, checked.ranges
        )
        let (rows1, rows2, rows3) = ((logPass.rows.0, peer.rows.0), (logPass.rows.1, peer.rows.1), checked.rows)
        func q(_ xs: [Double]) -> String {
            "p50 \(fmt(percentile(xs, 0.5) * 1000)), p99 \(fmt(percentile(xs, 0.99) * 1000))"
        }
        // Both must answer the same: the same number of rows over all queries.
        guard rows1.0 == rows1.1, rows2.0 > 0, rows2.1 > 0, rows3 == (rows1.1, rows2.1) else {
            throw ValidationError(
                "the systems answered differently: newest pages \(rows1.0) vs \(rows1.1) rows (checked: \(rows3.0)), ranges \(rows2.0) vs \(rows2.1) rows (checked: \(rows3.1))"
            )
        }
        rows.append(
            (
                "org page: newest 100 with outcome=success, entries read (ms)", q(qa), q(qb),
                percentile(qb, 0.99) / percentile(qa, 0.99)
            ))
        rows.append(
            ("org time range: first 100, entries read (ms)", q(ra), q(rb), percentile(rb, 0.99) / percentile(ra, 0.99)))
        rows.append(
            (
                "org page as above, the peer checking each row's hash and links as the log does (ms)", q(qa), q(qc),
                percentile(qc, 0.99) / percentile(qa, 0.99)
            ))
        rows.append(
            (
                "org time range as above, the peer checking each row (ms)", q(ra), q(rc),
                percentile(rc, 0.99) / percentile(ra, 0.99)
            ))

        // 5. Bytes on disk per raw byte.
        try log.close()
        let logBytes = Size.parts(dir + "/log").values.reduce(0, +)
        let lb = Double(logBytes) / Double(raw)
        let pb = Double(peer100.bytesOnDisk) / Double(raw)
        rows.append(("bytes on disk per raw byte", String(format: "%.3f", lb), String(format: "%.3f", pb), pb / lb))

        print(
            "\(lines.count) events, \(raw / max(1, lines.count)) B each on average, \(ProcessInfo.processInfo.activeProcessorCount) cores; ratio: how many times better the log is (> 1: the log wins)"
        )
        print("| figure | auditlog | SQLite peer | ratio |")
        print("|---|---|---|---|")
        for (f, a, b, r) in rows { print("| \(f) | \(a) | \(b) | \(r.map { String(format: "%.2f×", $0) } ?? "—") |") }
    }
}

/// Load shapes shared by both systems.
enum Bench {
    /// The writer index of the calling thread (set by `throughput`).
    static var thread: Int { (Thread.current.threadDictionary["auditbench.writer"] as? Int) ?? 0 }

    struct Result {
        var rate: Double
        var p50: Double
        var p99: Double
    }

    /// `writers` threads, each preparing its share of `lines` in batches and keeping up to
    /// `depth` batches in flight through `append(batch, done)`.
    static func throughput(
        lines: [[UInt8]], writers: Int, batch: Int, depth: Int,
        _ append: @escaping @Sendable ([PreparedEntry], @escaping @Sendable () -> Void) throws -> Void
    ) throws -> Result {
        let lat = LatencyLog()
        let per = (lines.count + writers - 1) / writers
        let group = DispatchGroup()
        let start = Date()
        for w in 0..<writers {
            let slice = Array(lines[min(lines.count, w * per)..<min(lines.count, (w + 1) * per)])
            group.enter()
            let t = Thread {
                Thread.current.threadDictionary["auditbench.writer"] = w
                let inflight = DispatchSemaphore(value: depth)
                var i = 0
                while i < slice.count {
                    let now = Int64(Date().timeIntervalSince1970 * 1000)
                    let chunk = slice[i..<min(slice.count, i + batch)].compactMap {
                        try? Entry.prepare(json: $0, receivedAt: now, writer: Writer(uid: 0, gid: 0, via: "bench"))
                    }
                    i += batch
                    inflight.wait()
                    let t0 = Date()
                    try? append(chunk) {
                        lat.add(Date().timeIntervalSince(t0))
                        inflight.signal()
                    }
                }
                for _ in 0..<depth { inflight.wait() }
                for _ in 0..<depth { inflight.signal() }  // libdispatch traps on freeing a semaphore below its start
                group.leave()
            }
            t.stackSize = 1 << 20
            t.start()
        }
        group.wait()
        let secs = Date().timeIntervalSince(start)
        let l = lat.values
        return Result(rate: Double(lines.count) / secs, p50: percentile(l, 0.5), p99: percentile(l, 0.99))
    }

    /// One writer, one entry at a time.
    static func loneWriter(lines: [[UInt8]], _ append: (PreparedEntry) throws -> Void) throws -> Result {
        var l: [Double] = []
        let start = Date()
        for line in lines {
            let e = try Entry.prepare(
                json: line, receivedAt: Int64(Date().timeIntervalSince1970 * 1000),
                writer: Writer(uid: 0, gid: 0, via: "bench"))
            let t0 = Date()
            try append(e)
            l.append(Date().timeIntervalSince(t0))
        }
        return Result(
            rate: Double(lines.count) / Date().timeIntervalSince(start), p50: percentile(l, 0.5),
            p99: percentile(l, 0.99))
    }
}
