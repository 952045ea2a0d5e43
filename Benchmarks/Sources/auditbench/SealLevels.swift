import ArgumentParser
import Foundation
import SegmentStore

/// `seal-levels`: what each zstd level costs and saves on a log's sealed segments, as the seal
/// compresses them (records in key order, runs of the block size, the segment's dictionary
/// trained on a sample as `SealDictionaries` does), with the seal's parameters (`Zstd.tuned`)
/// and, with `--libzstd`, libzstd's own beside them.
struct SealLevels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seal-levels", abstract: "Time and bytes of each zstd level over a log's sealed segments.")
    @Option(help: "Data directory.") var dir: String
    @Option(help: "zstd levels, comma-separated.") var levels = "1,2,3,4,5,6"
    @Option(help: "Most segments read.") var segments = 4
    @Option(help: "Block target, bytes.") var block = 64 << 10
    @Option(help: "Passes per level (the fastest is reported).") var passes = 3
    @Flag(help: "Each level also with libzstd's own parameters, not the seal's (`Zstd.tuned`).") var libzstd = false

    func run() throws {
        let seg = dir + "/segments"
        let names = try FileManager.default.contentsOfDirectory(atPath: seg).filter { $0.hasSuffix(".seg") }.sorted()
        var runs: [[UInt8]] = []
        var entries = 0
        var samples: [ArraySlice<UInt8>] = []
        for name in names.prefix(segments) {
            var records = try SealedSegment(path: seg + "/" + name).readAll()
            records.sort { ($0.key, $0.seq) < ($1.key, $1.seq) }
            entries += records.count
            var run: [UInt8] = []
            for (i, r) in records.enumerated() {
                if i % 32 == 0 { samples.append(r.payload[...]) }
                run.append(contentsOf: r.payload)
                if run.count >= block {
                    runs.append(run)
                    run = []
                }
            }
            if !run.isEmpty { runs.append(run) }
        }
        let raw = runs.reduce(0) { $0 + $1.count }
        let dictionary = ZstdDictionary.train(samples: samples, capacity: 110 << 10)
        print(
            "\(entries) entries, \(raw) raw bytes in \(runs.count) runs; dictionary \(dictionary?.bytes.count ?? 0) B")
        for level in levels.split(separator: ",").compactMap({ Int32($0) }) {
            for tuned in libzstd ? [true, false] : [true] {
                let encoder = dictionary?.encoder(level: level, tuned: tuned)
                var best = Double.infinity
                var bytes = 0
                for _ in 0..<passes {
                    bytes = 0
                    let t0 = Date()
                    for r in runs { bytes += try Zstd.compress(r[...], level: level, encoder: encoder).count }
                    best = min(best, Date().timeIntervalSince(t0))
                }
                print(
                    "level \(level)\(tuned ? "" : " (libzstd's own)"): \(String(format: "%.1f", Double(raw) / best / 1e6)) MB/s, \(String(format: "%.4f", Double(bytes) / Double(raw))) of raw, \(bytes / max(1, entries)) B/entry"
                )
            }
        }
    }
}
