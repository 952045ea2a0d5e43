import AuditBase
import Foundation

/// The zstd dictionary a seal compresses its blocks with (format-spec.md §2.4), and the last
/// one trained, offered to the seals after it: training takes about 40 ms of a core per
/// 32 MiB segment, while a dictionary trained on one segment of a log compresses the next
/// ones of the same log almost as well. One is trained again after `reuses` more seals, or as
/// soon as the last one stops paying.
final class SealDictionaries: @unchecked Sendable {
    private let lock = NSLock()
    private var last: (dictionary: ZstdDictionary, uses: Int)?
    /// Seals that may use a dictionary after the one it was trained for.
    static let reuses = 7
    /// Most record bytes a dictionary is trained on, and checked against.
    static let sampleBudget = 1 << 20

    /// The dictionary for a segment of `records`, ready to compress at `level`, or nil when
    /// none would pay. It holds at most a 64th of the records' bytes, capped at `limit` (below
    /// 4 KiB, none), and is trained on at most `sampleBudget` bytes of records taken evenly
    /// through the segment: on the workload's events, 4 MiB of them took three times as long
    /// for a dictionary that saved 0.5 % more, and a seal's training competes with ingest for
    /// the same cores. A dictionary is used only if those records, compressed in runs of
    /// `blockTarget` bytes as blocks are, shrink by more than its own size would cost once
    /// scaled to the segment: on the workload's events it saves about a fifth of the blocks'
    /// bytes, but on records that compress ten times over alone it can cost more than it saves.
    func choose(
        for records: [StoredRecord], upTo limit: Int, level: Int32, blockTarget: Int
    ) -> (ZstdDictionary, ZstdDictionary.Encoder)? {
        let total = records.reduce(0) { $0 + $1.payload.count }
        let capacity = min(limit, total / 64)
        guard capacity >= 4096 else { return nil }
        let stride = max(1, (total + Self.sampleBudget - 1) / Self.sampleBudget)
        var samples: [ArraySlice<UInt8>] = []
        samples.reserveCapacity(records.count / stride + 1)
        for i in Swift.stride(from: 0, to: records.count, by: stride) { samples.append(records[i].payload[...]) }
        let sampled = samples.reduce(0) { $0 + $1.count }
        let scale = Double(total) / Double(max(1, sampled))
        func paying(_ d: ZstdDictionary) -> (ZstdDictionary, ZstdDictionary.Encoder)? {
            guard d.bytes.count <= capacity, let encoder = d.encoder(level: level),
                let (plain, with) = Self.compressed(samples, level: level, encoder: encoder, runs: blockTarget),
                Double(with) * scale + Double(d.bytes.count) < Double(plain) * scale
            else { return nil }
            return (d, encoder)
        }
        let offered: ZstdDictionary? = lock.withLock {
            guard let l = last, l.uses <= Self.reuses else { return nil }
            last?.uses += 1
            return l.dictionary
        }
        if let offered, let chosen = paying(offered) { return chosen }
        guard let d = ZstdDictionary.train(samples: samples, capacity: capacity), let chosen = paying(d) else {
            return nil
        }
        lock.withLock { last = (d, 1) }
        return chosen
    }

    /// The bytes `samples` take compressed in runs of about `runs` bytes, alone and with
    /// `encoder`; nil when libzstd fails.
    static func compressed(
        _ samples: [ArraySlice<UInt8>], level: Int32, encoder: ZstdDictionary.Encoder, runs: Int
    ) -> (plain: Int, with: Int)? {
        var plain = 0
        var with = 0
        var run: [UInt8] = []
        run.reserveCapacity(runs + 4096)
        func measure() -> Bool {
            guard !run.isEmpty else { return true }
            guard let a = try? Zstd.compress(run[...], level: level),
                let b = try? Zstd.compress(run[...], level: level, encoder: encoder)
            else { return false }
            plain += a.count
            with += b.count
            run.removeAll(keepingCapacity: true)
            return true
        }
        for sample in samples {
            run.append(contentsOf: sample)
            if run.count >= runs, !measure() { return nil }
        }
        guard measure(), plain > 0 else { return nil }
        return (plain, with)
    }
}
