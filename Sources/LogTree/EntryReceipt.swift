import AuditBase
import AuditEntries
import Foundation
import LogProofs

/// A writer's receipt for an acknowledged entry (format-spec.md §9.4): the log's signed
/// checkpoint and the entry's RFC 9162 inclusion proof in it. It needs no signature per entry
/// (one checkpoint covers every entry before its size) and verifies offline with the log's
/// key. Held by a third party, a receipt whose entry the log no longer holds at the same
/// place is proof of tampering: the log's own key signed a tree containing it.
///
///     {"format":"auditlog-receipt/1","seq":N,"hash":"<leaf hex>","checkpoint":"<signed note>",
///      "inclusion":["<hex>",…],"key_successions":["<statement>",…]?}
///
/// `key_successions` (format-spec.md §8.8), once the log's key was handed on, lets a holder of
/// the first key check a checkpoint a later key signed.
public struct EntryReceipt: Sendable, Equatable {
    /// The receipts' format tag.
    public static let tag = "auditlog-receipt/1"
    /// The entry's sequence number (its leaf index).
    public var seq: UInt64
    /// Its leaf hash (the ACK's hash).
    public var hash: Hash
    /// The signed checkpoint it is proven in.
    public var checkpoint: String
    /// The inclusion proof.
    public var inclusion: [Hash]
    /// The statements handing the log's key on (JSON receipts only; none before the first).
    public var successions: [String]

    /// A receipt.
    public init(seq: UInt64, hash: Hash, checkpoint: String, inclusion: [Hash], successions: [String] = []) {
        self.seq = seq
        self.hash = hash
        self.checkpoint = checkpoint
        self.inclusion = inclusion
        self.successions = successions
    }

    /// One JSON line (with `extra` fields first, e.g. the writer's input line number).
    public func json(extra: String = "") -> String {
        let note = CanonicalJSON.quoted(checkpoint)
        return
            "{\(extra)\"format\":\"\(Self.tag)\",\"seq\":\(seq),\"hash\":\"\(hash.hex)\",\"checkpoint\":\(note),\"inclusion\":["
            + inclusion.map { "\"\($0.hex)\"" }.joined(separator: ",") + "]"
            + (successions.isEmpty
                ? "" : ",\"key_successions\":[" + successions.map(CanonicalJSON.quoted).joined(separator: ",") + "]")
            + "}"
    }

    /// Parses one JSON line.
    public init(json line: String) throws {
        guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            o["format"] as? String == Self.tag
        else {
            throw AuditError("not an \(Self.tag) receipt")
        }
        // A sequence number is a whole number that fits 64 bits: 5.5 or 2^64 + 5 is not "entry 5".
        guard let n = o["seq"] as? NSNumber, n.stringValue == String(n.uint64Value) else {
            throw AuditError("receipt's seq is not a whole number from 0 to \(UInt64.max)")
        }
        let seq = n.uint64Value
        guard let h = Hash(hex: o["hash"] as? String ?? ""), let cp = o["checkpoint"] as? String,
            let proof = o["inclusion"] as? [String]
        else { throw AuditError("receipt lacks seq, hash, checkpoint or inclusion") }
        let hashes = proof.compactMap { Hash(hex: $0) }
        guard hashes.count == proof.count, hashes.count <= 64 else {
            throw AuditError("receipt's inclusion proof is not a list of hex hashes")
        }
        guard let successions = (o["key_successions"] ?? [String]()) as? [String], successions.count <= 64 else {
            throw AuditError("receipt's key_successions is not a list of statements")
        }
        self.init(seq: seq, hash: h, checkpoint: cp, inclusion: hashes, successions: successions)
    }

    /// The first line of a C2SP tlog-proof.
    public static let tlogProofTag = "c2sp.org/tlog-proof@v1"

    /// The receipt as a C2SP tlog-proof (`.tlog-proof`, format-spec.md §9.4): the leaf hash
    /// as its `extra` (what a verifier needs besides the index to rebuild the record hash),
    /// the index, the inclusion proof in base64 lines, an empty line, the signed checkpoint.
    public var tlogProof: String {
        "\(Self.tlogProofTag)\nextra \(Data(hash.bytes).base64EncodedString())\nindex \(seq)\n"
            + inclusion.map { Data($0.bytes).base64EncodedString() + "\n" }.joined() + "\n" + checkpoint
    }

    /// Parses a C2SP tlog-proof whose `extra` is the entry's leaf hash (as `tlogProof` writes),
    /// strictly: canonical base64, a decimal index without leading zeroes, at most 64 hashes.
    public init(tlogProof text: String) throws {
        var lines = text.split(separator: "\n", maxSplits: 72, omittingEmptySubsequences: false)[...]
        func next() -> Substring? { lines.isEmpty ? nil : lines.removeFirst() }
        guard next() == Self.tlogProofTag[...] else {
            throw AuditError("not a tlog-proof: the first line must be \(Self.tlogProofTag)")
        }
        guard let extra = next(), extra.hasPrefix("extra "), let raw = Note.base64(extra.dropFirst(6)),
            let hash = Hash(bytes: raw)
        else {
            throw AuditError(
                "this tlog-proof carries no entry hash: its second line must be \"extra \" and the base64 of the 32-byte leaf hash"
            )
        }
        guard let indexLine = next(), indexLine.hasPrefix("index "), let seq = UInt64(indexLine.dropFirst(6)),
            String(seq) == indexLine.dropFirst(6)
        else { throw AuditError("the tlog-proof's index line must be \"index N\" (decimal, no leading zeroes)") }
        var proof: [Hash] = []
        while let l = next(), !l.isEmpty {
            guard proof.count < 64, let raw = Note.base64(l), let h = Hash(bytes: raw) else {
                throw AuditError(
                    "a tlog-proof inclusion line is not canonical base64 of 32 bytes (or there are more than 64)")
            }
            proof.append(h)
        }
        let note = lines.joined(separator: "\n")
        guard !note.isEmpty else { throw AuditError("the tlog-proof holds no checkpoint after its proof") }
        self.init(seq: seq, hash: hash, checkpoint: note, inclusion: proof)
    }

    /// Checks the receipt with the log's key: the checkpoint's signature, and the inclusion of
    /// leaf `hash` at `seq` in its tree. Returns the checkpoint.
    /// A key with no successions follows the receipt's own (each checked: signed by the key it
    /// replaces).
    public func verify(key given: LogKeys) throws -> SignedCheckpoint {
        let cp: SignedCheckpoint
        do {
            let key =
                given.successions.isEmpty && !successions.isEmpty
                ? try LogKeys(trusting: given.original, successions: successions) : given
            cp = try SignedCheckpoint(note: checkpoint, verifier: key)
        } catch {
            throw AuditError(
                "the receipt's checkpoint is not signed by \(given.text) (or a key it was handed on to): \(error)")
        }
        guard seq < cp.checkpoint.size,
            Merkle.verifyInclusion(
                index: seq, size: cp.checkpoint.size, leaf: hash, proof: inclusion, root: cp.checkpoint.root)
        else {
            throw AuditError(
                "the receipt's inclusion proof does not place entry \(seq) (hash \(hash.hex)) in the signed tree of size \(cp.checkpoint.size): the receipt was altered"
            )
        }
        return cp
    }

    /// Checks a valid receipt against the log in `directory` (read-only): the log must still
    /// hold the entry's leaf at `seq`, and its tree must extend the receipt's checkpoint.
    /// Returns nil when it does, else what was removed or changed, in words.
    public func check(against directory: String, key: LogKeys) throws -> String? {
        let cp = try verify(key: key).checkpoint
        let tree = try TreeStore(directory: DataDirectory(directory).tree, readOnly: true)
        guard tree.size >= cp.size else {
            return
                "the log at \(directory) holds \(tree.size) entries, but its key signed a tree of \(cp.size) holding entry \(seq): entries were removed (rollback)"
        }
        let root = try tree.root(at: cp.size)
        guard root == cp.root else {
            return
                "the log's tree at size \(cp.size) has root \(root.hex), but its key signed root \(cp.root.hex) with entry \(seq) in it: its history was rewritten"
        }
        let leaf = try tree.leaf(seq)
        guard leaf == hash else { return "entry \(seq) is now \(leaf.hex), not \(hash.hex): it was replaced" }
        return nil
    }
}
