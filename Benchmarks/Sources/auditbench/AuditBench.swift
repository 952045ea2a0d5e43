import ArgumentParser
import AuditBase
import AuditEntries
import AuditIndex
import ChainIndex
import Foundation
import LogProofs
import LogTree
import SegmentStore
import Synchronization

/// Load generator and figure producer for design §7 (see Benchmarks/README.md).
@main
struct AuditBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auditbench",
        abstract: "Measure the audit log: durable append, proofs, org queries, bytes on disk.",
        subcommands: [
            Compare.self, Append.self, Socket.self, HTTPQuery.self, Proofs.self, Query.self, Size.self, SynthTree.self,
            S3Put.self, Erase.self, SealLevels.self,
        ])
}

func percentile(_ xs: [Double], _ p: Double) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted()
    return s[min(s.count - 1, Int(Double(s.count - 1) * p))]
}

func ms(_ d: Double) -> String { String(format: "%.3f ms", d * 1000) }

func loadLines(_ path: String, limit: Int?) throws -> [[UInt8]] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    var out: [[UInt8]] = []
    data.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
        var start = 0
        for i in 0..<b.count where b[i] == 0x0A {
            out.append(Array(b[start..<i]))
            start = i + 1
            if let limit, out.count >= limit { return }
        }
    }
    return out
}

func signer(for dir: String) throws -> NoteSigner {
    try KeyFile.loadOrCreate(path: dir + ".key", name: "auditbench.local/log").0
}

/// `append`: N concurrent writers, each preparing its own entries (the parallel ingest work)
/// and appending batches; durable throughput and ack latency per batch.
struct Append: ParsableCommand {
    @Option(help: "Data directory (created).") var dir: String
    @Option(help: "NDJSON events (from genevents.py).") var events: String
    @Option(help: "Concurrent writers.") var writers = 8
    @Option(help: "Entries per append call (a writer's pipelined batch).") var batch = 64
    @Option(help: "Stop after this many entries (default: all).") var count: Int?
    @Option(help: "Total target rate, entries/s (default: as fast as possible).") var rate: Double?
    @Flag(help: "Commit personal fields (format-spec.md §5.4): the log's personal_fields = commit.")
    var personal = false
    @Flag(help: "Only prepare the entries (validation, canonical bytes, commitments): µs each.")
    var prepareOnly = false
    @Option(
        help:
            "With --prepare-only: threads preparing at once, each its share of the entries, as the daemon's event loops do (what they share, the subjects' keys, costs more then)."
    )
    var prepareThreads = 1
    @Option(help: "Threads that compress a sealed segment's blocks (default: the store's, the cores up to 4).")
    var sealThreads: Int?
    @Option(help: "zstd level of sealed segments (default: the store's).") var sealLevel: Int32?

    func run() throws {
        let lines = try loadLines(events, limit: count)
        let raw = lines.reduce(0) { $0 + $1.count }
        let s = try signer(for: dir)
        var o = LedgerOptions()
        o.protectPersonalFields = personal
        if let sealThreads { o.store.sealThreads = sealThreads }
        if let sealLevel { o.store.sealLevel = sealLevel }
        let ledger = try Ledger(directory: dir, signer: s, options: o)
        let keys = ledger.subjectKeys
        if prepareOnly {
            guard (1...64).contains(prepareThreads) else {
                throw ValidationError("--prepare-threads is 1 to 64, not \(prepareThreads)")
            }
            let threads = prepareThreads
            let share = (lines.count + threads - 1) / threads
            let bytes = Mutex(0)
            let group = DispatchGroup()
            let t0 = Date()
            for t in 0..<threads {
                let mine = lines[min(lines.count, t * share)..<min(lines.count, (t + 1) * share)]
                group.enter()
                Thread {
                    let writer = Writer(uid: 0, gid: 0, via: "bench")
                    var n = 0
                    for l in mine {
                        n +=
                            (try? Entry.prepare(json: l, receivedAt: 1, writer: writer, keys: keys))?.content.count ?? 0
                    }
                    bytes.withLock { $0 += n }
                    group.leave()
                }.start()
            }
            group.wait()
            let secs = Date().timeIntervalSince(t0)
            try ledger.close()
            let each = bytes.withLock { $0 } / max(1, lines.count)
            // Thread-time an entry: the wall time times the threads (each busy throughout).
            print(
                "prepare\(personal ? " (personal fields committed)" : ""): \(lines.count) entries on \(threads == 1 ? "one thread" : "\(threads) threads at once"), \(String(format: "%.2f", secs * 1e6 * Double(threads) / Double(lines.count))) µs each (thread-time), \(String(format: "%.0f", Double(lines.count) / secs)) entries/s, \(each) canonical bytes each"
            )
            return
        }
        let lat = LatencyLog()
        let start = Date()
        let perWriter = (lines.count + writers - 1) / writers
        let group = DispatchGroup()
        for w in 0..<writers {
            let slice = Array(lines[min(lines.count, w * perWriter)..<min(lines.count, (w + 1) * perWriter)])
            let interval = rate.map { Double(batch) / ($0 / Double(writers)) }
            group.enter()
            Thread {
                var i = 0
                var next = Date()
                let inflight = DispatchSemaphore(value: 4)
                while i < slice.count {
                    if let interval {
                        let now = Date()
                        if next > now { Thread.sleep(until: next) }
                        next = next.addingTimeInterval(interval)
                    }
                    let now = Int64(Date().timeIntervalSince1970 * 1000)
                    let chunk = slice[i..<min(slice.count, i + batch)].compactMap {
                        try? Entry.prepare(
                            json: $0, receivedAt: now, writer: Writer(uid: 0, gid: 0, via: "bench"), keys: keys)
                    }
                    i += batch
                    let t0 = Date()
                    inflight.wait()
                    ledger.append(chunk) { _ in
                        lat.add(Date().timeIntervalSince(t0))
                        inflight.signal()
                    }
                }
                for _ in 0..<4 { inflight.wait() }
                for _ in 0..<4 { inflight.signal() }
                group.leave()
            }.start()
        }
        group.wait()
        let secs = Date().timeIntervalSince(start)
        try ledger.close()
        let l = lat.values
        print(
            "append\(personal ? " (personal fields committed)" : ""): \(lines.count) entries (\(raw / max(1, lines.count)) B avg) by \(writers) writers, batch \(batch): \(String(format: "%.2f", secs)) s, \(Int(Double(lines.count) / secs)) durable entries/s"
        )
        print(
            "ack latency per batch: p50 \(ms(percentile(l, 0.5))), p99 \(ms(percentile(l, 0.99))), max \(ms(l.max() ?? 0))"
        )
        print("raw input bytes: \(raw)")
    }
}

final class LatencyLog: @unchecked Sendable {
    private let lock = NSLock()
    private var xs: [Double] = []
    func add(_ x: Double) { lock.withLock { xs.append(x) } }
    var values: [Double] { lock.withLock { xs } }
}

/// `size`: bytes on disk (segments, index, tree, checkpoints) per raw input byte.
struct Size: ParsableCommand {
    @Option(help: "Data directory.") var dir: String
    @Option(help: "Raw input bytes (as printed by append).") var raw: Int

    /// Bytes of the regular files in each part of a log directory (the posting lists under
    /// `index/orgs` counted apart from the index files).
    static func parts(_ dir: String) -> [String: Int] {
        var parts: [String: Int] = [:]
        for sub in ["segments", "index", "index/orgs", "tree", "checkpoints"] {
            let p = dir + "/" + sub
            for f in (try? FileManager.default.contentsOfDirectory(atPath: p)) ?? [] {
                let a = try? FileManager.default.attributesOfItem(atPath: p + "/" + f)
                guard a?[.type] as? FileAttributeType == .typeRegular else { continue }
                parts[sub, default: 0] += (a?[.size] as? Int) ?? 0
            }
        }
        return parts
    }

    func run() throws {
        let parts = Self.parts(dir)
        let total = parts.values.reduce(0, +)
        for (k, v) in parts.sorted(by: { $0.key < $1.key }) {
            print("\(k): \(v) bytes (\(String(format: "%.3f", Double(v) / Double(raw))) per raw byte)")
        }
        print(
            "total: \(total) bytes = \(String(format: "%.3f", Double(total) / Double(raw))) bytes on disk per raw entry byte"
        )
    }
}

/// `proofs`: inclusion and consistency proof latency against a directory's tree.
struct Proofs: ParsableCommand {
    @Option(help: "Data directory (or a tree directory with --tree-only).") var dir: String
    @Flag(help: "DIR is a bare tree directory (from synth-tree).") var treeOnly = false
    @Option var count = 2000

    func run() throws {
        let t = try TreeStore(directory: treeOnly ? dir : DataDirectory(dir).tree, readOnly: true)
        let n = t.size
        var rng = SystemRandomNumberGenerator()
        var inc: [Double] = []
        var con: [Double] = []
        for _ in 0..<count {
            let size = UInt64.random(in: (n / 2)...n, using: &rng)
            let i = UInt64.random(in: 0..<size, using: &rng)
            var t0 = Date()
            _ = try t.inclusionProof(index: i, size: size)
            inc.append(Date().timeIntervalSince(t0))
            let old = UInt64.random(in: 1...size, using: &rng)
            t0 = Date()
            _ = try t.consistencyProof(old: old, new: size)
            con.append(Date().timeIntervalSince(t0))
        }
        print(
            "tree size \(n): inclusion p50 \(ms(percentile(inc, 0.5))) p99 \(ms(percentile(inc, 0.99))); consistency p50 \(ms(percentile(con, 0.5))) p99 \(ms(percentile(con, 0.99)))"
        )
    }
}

/// `synth-tree`: a tree of N random leaves on disk, to measure proofs at sizes no test builds.
struct SynthTree: ParsableCommand {
    @Option var dir: String
    @Option var leaves: UInt64 = 100_000_000

    func run() throws {
        let t = try TreeStore(directory: dir)
        var buf: [Hash] = []
        buf.reserveCapacity(1 << 16)
        var i = t.size
        let start = Date()
        while i < leaves {
            var x = i
            buf.append(SHA256.hash(withUnsafeBytes(of: &x) { Array($0) }))
            i += 1
            if buf.count == 1 << 16 || i == leaves {
                try t.append(buf)
                buf.removeAll(keepingCapacity: true)
                if i % (1 << 22) == 0 {
                    FileHandle.standardError.write(
                        "\(i) leaves, \(Int(Double(i) / Date().timeIntervalSince(start)))/s\n".data(using: .utf8)!)
                }
            }
        }
        try t.sync()
        print("tree of \(t.size) leaves in \(dir)")
    }
}

/// `query`: org page latency: newest 100 with a filter, and first 100 of a time range.
struct Query: ParsableCommand {
    @Option var dir: String
    @Option var count = 1000

    func run() throws {
        let ledger = try Ledger(directory: dir, signer: try signer(for: dir))
        defer { try? ledger.close() }
        // Orgs and the time span, from a sample of entries.
        var orgs = Set<String>()
        let n = ledger.size
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            if let e = try? ledger.entry(seq: UInt64.random(in: 0..<n, using: &rng)) { orgs.insert(e.org) }
        }
        let orgList = Array(orgs)
        let first = try ledger.query(org: orgList[0], newestFirst: false, limit: 1).first?.fields.time ?? 0
        let last = try ledger.query(org: orgList[0], limit: 1).first?.fields.time ?? 0
        var filtered: [Double] = []
        var ranged: [Double] = []
        var read = 0
        for k in 0..<count {
            let org = orgList[k % orgList.count]
            var t0 = Date()
            // As the read port reads a page (`OrgRoutes`): the index, then the page's entries in
            // one read (each block decompressed once), each checked against its leaf.
            read += try ledger.search(org: org, filter: QueryFilter(outcome: .success), limit: 100).entries.count
            filtered.append(Date().timeIntervalSince(t0))
            let from = Int64.random(in: first...max(first, last), using: &rng)
            t0 = Date()
            let p2 = try ledger.query(
                org: org, filter: QueryFilter(from: from, to: from + 3_600_000), newestFirst: false, limit: 100)
            _ = p2.count
            ranged.append(Date().timeIntervalSince(t0))
        }
        print(
            "\(n) entries, \(orgList.count) orgs sampled: newest 100 with a filter (index + entries read, \(read / max(1, count)) a page on average) p50 \(ms(percentile(filtered, 0.5))) p99 \(ms(percentile(filtered, 0.99))); time range first 100 (index) p50 \(ms(percentile(ranged, 0.5))) p99 \(ms(percentile(ranged, 0.99)))"
        )
    }
}
