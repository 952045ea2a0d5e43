import AuditBase
import AuditExport
import Foundation
import LogProofs

/// The files of an evidence pack (format-spec.md §9.5) and what `pack.json` says of them.
public enum EvidencePack {
    /// The format tag.
    public static let format = "auditlog-evidence/1"
    /// The files every pack holds, besides `pack.json`.
    public static let files = [
        "export.ndjson", "export.csv", "checkpoint.txt", "sample.json", "summary.json", "controls.json", "report.html",
        "VERIFY.md", "verify_export.py",
    ]

    /// A sampled entry: where it is in the selection, its seq and hash, its inclusion proof.
    public struct Sampled: Sendable, Equatable {
        public var index: Int
        public var seq: UInt64
        public var hash: Hash
        public var proof: [Hash]
        public init(index: Int, seq: UInt64, hash: Hash, proof: [Hash]) {
            self.index = index
            self.seq = seq
            self.hash = hash
            self.proof = proof
        }
    }

    /// `sample.json`.
    public static func sampleJSON(
        seed: Hash, auditorSeed: String?, checkpoint: Checkpoint, k: Int, entries: [Sampled]
    ) -> [String: Any] {
        var o: [String: Any] = [
            "seed": seed.hex, "checkpoint_size": checkpoint.size, "checkpoint_root": checkpoint.root.hex, "k": k,
            "rule":
                "index i of the selection: SHA-256(\"auditlog evidence sample v1\\n\" || seed || u64be(n)) for n = 0, 1, …, first 8 bytes big-endian mod count, repeats skipped; seed = SHA-256(checkpoint root || auditor seed)",
            "entries": entries.map {
                ["index": $0.index, "seq": $0.seq, "hash": $0.hash.hex, "inclusion": $0.proof.map(\.hex)]
                    as [String: Any]
            },
        ]
        if let auditorSeed { o["auditor_seed"] = auditorSeed }
        return o
    }

    /// `pack.json`: what the pack is and the SHA-256 of every other file.
    public static func manifest(
        org: String, from: String, to: String, k: Int, auditorSeed: String?, hashes: [String: String]
    ) -> [String: Any] {
        var o: [String: Any] = [
            "format": format, "org": org, "from": from, "to": to, "sample_size": k, "files": hashes,
        ]
        if let auditorSeed { o["auditor_seed"] = auditorSeed }
        return o
    }

    /// JSON text, keys sorted.
    public static func json(_ o: Any) -> [UInt8] {
        Array(
            (try? JSONSerialization.data(
                withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]))
                ?? Data("{}".utf8)) + [0x0A]
    }
}
