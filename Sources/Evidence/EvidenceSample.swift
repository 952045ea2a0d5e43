import AuditBase
import LogProofs

/// The sample an auditor tests (format-spec.md §9.5): K of an export's selected entries, drawn
/// by a generator seeded with the export's checkpoint root (and, when the auditor gives one,
/// their own seed), so that neither the company nor the vendor chooses it and anyone re-draws it.
public enum EvidenceSample {
    /// The default sample size.
    public static let defaultSize = 25
    /// The largest sample a pack holds.
    public static let maxSize = 1000

    /// The seed: SHA-256 of the checkpoint root, then the auditor's seed (if any) in UTF-8.
    public static func seed(root: Hash, auditorSeed: String?) -> Hash {
        SHA256.hash(root.bytes + Array((auditorSeed ?? "").utf8))
    }

    /// `min(k, count)` distinct indexes into the selection (`0..<count`), in the order drawn:
    /// draw `i` is the first 8 bytes, big-endian, of `SHA-256("auditlog evidence sample v1\n"
    /// || seed || u64be(i))` modulo `count`; an index drawn before is skipped.
    public static func draw(seed: Hash, count: Int, k: Int) -> [Int] {
        guard count > 0, k > 0 else { return [] }
        let want = min(k, count)
        let prefix = Array("auditlog evidence sample v1\n".utf8) + seed.bytes
        var picked: [Int] = []
        var seen = Set<Int>()
        var i: UInt64 = 0
        while picked.count < want {
            var w = ByteWriter(capacity: 8)
            w.writeBE(i)
            let h = SHA256.hash(prefix + w.bytes).bytes
            let v = h.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let j = Int(v % UInt64(count))
            if seen.insert(j).inserted { picked.append(j) }
            i += 1
        }
        return picked
    }
}
