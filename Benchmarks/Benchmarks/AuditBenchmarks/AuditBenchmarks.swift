import AuditBase
import AuditEntries
import Benchmark
import ChainIndex
import Foundation
import LogTree
import SegmentStore

/// Micro-benchmarks of the per-entry hot path and of proofs.
/// Run: `swift package --package-path Benchmarks benchmark`.
let benchmarks: @Sendable () -> Void = {
    let event = Array(
        #"{"org":"org_16y7ykt3b6","category":"authentication","action":"auth.login.success","actor":{"type":"human","id":"usr_5nbzhry49hsk"},"target":{"type":"session","id":"sess_9e9anhgq02"},"outcome":"success","source":{"service":"sso-bridge","ip":"220.13.4.139","user_agent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36"},"occurred_at":"2025-03-01T00:00:00.158Z","metadata":{"method":"password","mfa":false}}"#
            .utf8)
    let writer = Writer(uid: 0, gid: 0, via: "bench")

    Benchmark(
        "Entry.prepare (validate, canonicalise, content hash)",
        configuration: .init(metrics: [.throughput, .wallClock], maxDuration: .seconds(3))
    ) { b in
        for _ in b.scaledIterations {
            blackHole(try? Entry.prepare(json: event, receivedAt: 1_740_787_200_000, writer: writer))
        }
    }

    Benchmark(
        "Link.leafHash (the serial per-entry hash)",
        configuration: .init(metrics: [.throughput, .wallClock], maxDuration: .seconds(3))
    ) { b in
        var link = Link(seq: 1, orgSeq: 2, contentHash: SHA256.hash(event), prevHash: .zero, prevOrgHash: .zero)
        for i in b.scaledIterations {
            link.seq = UInt64(i)
            blackHole(link.leafHash)
        }
    }

    Benchmark(
        "Block.encode 64 records (zstd 1 + CRC-32C)",
        configuration: .init(metrics: [.throughput, .wallClock], maxDuration: .seconds(3))
    ) { b in
        let recs = (0..<64).map { StoredRecord(seq: UInt64($0), key: 1, payload: event) }
        for _ in b.scaledIterations { blackHole(try? Block.encode(recs, level: 1)) }
    }

    let dir = NSTemporaryDirectory() + "auditbench-tree-\(UUID().uuidString.prefix(8))"
    Benchmark(
        "inclusion proof, 1M-leaf tree on disk",
        configuration: .init(
            metrics: [.wallClock, .throughput], maxDuration: .seconds(3),
            setup: {
                let t = try TreeStore(directory: dir)
                var leaves: [Hash] = []
                for i in 0..<1_000_000 {
                    leaves.append(SHA256.hash(withUnsafeBytes(of: i) { Array($0) }))
                    if leaves.count == 65536 {
                        try t.append(leaves)
                        leaves.removeAll()
                    }
                }
                try t.append(leaves)
            }, teardown: { try? FileManager.default.removeItem(atPath: dir) })
    ) { b in
        let t = try TreeStore(directory: dir, readOnly: true)
        var rng = SystemRandomNumberGenerator()
        for _ in b.scaledIterations {
            blackHole(try t.inclusionProof(index: UInt64.random(in: 0..<999_000, using: &rng), size: 999_999))
        }
    }
}
