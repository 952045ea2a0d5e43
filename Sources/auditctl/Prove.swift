import ArgumentParser
import AuditBase
import ChainIndex
import Foundation
import LogProofs
import LogTree
import SegmentStore

/// `auditctl prove inclusion|consistency`.
struct Prove: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an RFC 9162 proof as JSON, for any independent verifier.",
        subcommands: [Inclusion.self, Consistency.self])

    struct Inclusion: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Inclusion proof of one entry.")

        @Argument(help: "The data directory.")
        var dir: String
        @Option(help: "The entry's sequence number (= leaf index).")
        var seq: UInt64
        @Option(help: "Tree size to prove against. Default: the latest checkpoint's.")
        var size: UInt64?
        @Option(
            help:
                "json, or tlog-proof: a C2SP tlog-proof (`.tlog-proof`) other ecosystems' tools verify, its extra the entry's leaf hash; `auditctl verify-receipt` checks it."
        ) var format = "json"
        @Flag(help: "Prove against the newest checkpoint with its witnesses' cosignatures (checkpoints/cosigned).")
        var cosigned = false

        func run() throws {
            guard format == "json" || format == "tlog-proof" else {
                throw ValidationError("--format is json or tlog-proof, not \(format)")
            }
            let (tree, log, key) = try openReadOnly(dir)
            var witnessed: SignedCheckpoint?
            if cosigned {
                guard let bytes = try FileOps.readFile(DataDirectory(dir).cosigned, limit: 1 << 20) else {
                    throw CLIError("\(dir) has no cosigned checkpoint (auditd keeps one when witnesses are configured)")
                }
                witnessed = try SignedCheckpoint(note: String(decoding: bytes, as: UTF8.self), verifier: key)
                if let size, size != witnessed?.checkpoint.size {
                    throw ValidationError(
                        "--size \(size) is not the cosigned checkpoint's \(witnessed?.checkpoint.size ?? 0)")
                }
            }
            guard let n = witnessed?.checkpoint.size ?? size ?? log.latest?.checkpoint.size else {
                throw CLIError("\(dir) has no checkpoint; pass --size")
            }
            guard seq < n else { throw ValidationError("--seq \(seq) is not below the tree size \(n)") }
            guard n <= tree.size else { throw ValidationError("--size \(n) is beyond the log's \(tree.size) entries") }
            let proof = try tree.inclusionProof(index: seq, size: n)
            let cp =
                try witnessed?.note
                ?? log.first(atLeast: n, verifier: key).flatMap { $0.checkpoint.size == n ? $0.note : nil }
            if format == "tlog-proof" {
                guard let cp else {
                    throw CLIError("no checkpoint was signed at size \(n): omit --size to prove against the latest")
                }
                let r = EntryReceipt(seq: seq, hash: try tree.leaf(seq), checkpoint: cp, inclusion: proof)
                // Checked before it is printed: a proof that does not verify is never handed out.
                _ = try r.verify(key: key)
                print(r.tlogProof, terminator: "")
                return
            }
            try printJSON([
                "leaf_index": seq, "tree_size": n, "leaf_hash": try tree.leaf(seq).hex,
                "root": try tree.root(at: n).hex, "proof": proof.map(\.hex),
                "checkpoint": cp.map { $0 as Any } ?? NSNull(),
            ])
        }
    }

    struct Consistency: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Consistency proof between two tree sizes.")

        @Argument(help: "The data directory.")
        var dir: String
        @Option(help: "The older tree size.")
        var old: UInt64
        @Option(help: "The newer tree size. Default: the latest checkpoint's.")
        var new: UInt64?

        func run() throws {
            let (tree, log, _) = try openReadOnly(dir)
            guard let n = new ?? log.latest?.checkpoint.size else {
                throw CLIError("\(dir) has no checkpoint; pass --new")
            }
            guard old <= n else { throw ValidationError("--old \(old) is larger than --new \(n)") }
            guard n <= tree.size else { throw ValidationError("--new \(n) is beyond the log's \(tree.size) entries") }
            try printJSON([
                "old_size": old, "new_size": n, "old_root": try tree.root(at: old).hex,
                "new_root": try tree.root(at: n).hex,
                "proof": try tree.consistencyProof(old: old, new: n).map(\.hex),
            ])
        }
    }
}

func openReadOnly(_ dir: String) throws -> (TreeStore, CheckpointLog, LogKeys) {
    let key = try Ledger.verifierKey(directory: dir)
    return (
        try TreeStore(directory: DataDirectory(dir).tree, readOnly: true),
        try CheckpointLog(directory: DataDirectory(dir).checkpoints, verifier: key, readOnly: true), key
    )
}

func printJSON(_ obj: [String: Any]) throws {
    let data = try JSONSerialization.data(
        withJSONObject: obj, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}
