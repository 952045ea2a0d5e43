import AuditBase
import AuditExport
import Foundation
import LogProofs
import TimeStamping

/// `auditctl verify-evidence` (format-spec.md §9.5): every file of a pack as `pack.json`
/// hashes it; both exports complete and authentic; the sample the one the seed draws, each
/// entry in the checkpoint; every figure of the summary recomputed from the entries; the
/// control mapping the published one. Anything else fails, saying which.
public struct EvidenceVerifier {
    /// What was found.
    public struct Report: Sendable {
        /// The NDJSON export's verification.
        public var export: ExportVerifier.Report?
        /// Selected entries sampled and proven.
        public var sampled = 0
        /// The first failure.
        public var failure: String?
        public var ok: Bool { failure == nil }
    }

    let key: NoteVerifier?
    let kept: [String]
    let timeTrust: TimeStampTrust?

    public init(key: NoteVerifier?, kept: [String] = [], timeTrust: TimeStampTrust? = nil) {
        self.key = key
        self.kept = kept
        self.timeTrust = timeTrust
    }

    struct Failed: Error { var message: String }

    public func verify(dir: String) -> Report {
        var r = Report()
        do { try check(dir, &r) } catch let f as Failed { r.failure = f.message } catch { r.failure = "\(error)" }
        return r
    }

    func read(_ dir: String, _ name: String, limit: Int = 8 << 30) throws -> [UInt8] {
        guard let b = try FileOps.readFile(dir + "/" + name, limit: limit) else {
            throw Failed(message: "\(name) is missing from the pack")
        }
        return b
    }

    func object(_ bytes: [UInt8], _ name: String) throws -> [String: Any] {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else {
            throw Failed(message: "\(name) is not a JSON object")
        }
        return o
    }

    func check(_ dir: String, _ r: inout Report) throws {
        let pack = try object(try read(dir, "pack.json", limit: 1 << 20), "pack.json")
        guard pack["format"] as? String == EvidencePack.format, let hashes = pack["files"] as? [String: String],
            let org = pack["org"] as? String, let from = pack["from"] as? String, let to = pack["to"] as? String,
            let k = pack["sample_size"] as? Int
        else { throw Failed(message: "pack.json is not an \(EvidencePack.format) manifest") }
        for name in EvidencePack.files {
            guard let h = try SHA256.hash(file: dir + "/" + name) else {
                throw Failed(message: "\(name) is missing from the pack")
            }
            guard hashes[name] == h.hex else {
                throw Failed(message: "\(name) is not the file pack.json names (its SHA-256 differs): it was changed")
            }
        }
        // Both exports: authentic, and complete for the time range the pack states.
        let verifier = ExportVerifier(key: key, kept: kept, timeTrust: timeTrust)
        for (name, format) in [("export.ndjson", "ndjson"), ("export.csv", "csv")] {
            let reader = try ExportReader(path: dir + "/" + name)
            let e = verifier.verify(lines: reader, format: format)
            if let f = reader.failure ?? e.failure { throw Failed(message: "\(name): FAILED: \(f)") }
            guard e.completeness == .complete, e.org == org, e.filter == ["from": from, "to": to] else {
                throw Failed(
                    message:
                        "\(name) is not the complete export of org \(org) from \(from) to \(to) that pack.json names")
            }
            if format == "ndjson" { r.export = e }
        }
        // The selection, read back from the verified export a line at a time: its seqs and
        // hashes kept, its contents only counted.
        var header: [String: Any] = [:]
        var selection: [(seq: UInt64, hash: Hash)] = []
        var summary = EvidenceSummary()
        let lines = try ExportReader(path: dir + "/export.ndjson")
        for line in lines {
            let o = try object(Array(line.utf8), "export.ndjson")
            if o["type"] as? String == "header" { header = o }
            guard o["type"] as? String == "entry", let s = o["seq"] as? Int, let seq = UInt64(exactly: s),
                let h = (o["hash"] as? String).flatMap(Hash.init(hex:))
            else { continue }
            selection.append((seq, h))
            summary.add(content: (o["content"] as? String).map { Array($0.utf8) })
        }
        if let f = lines.failure { throw Failed(message: "export.ndjson: \(f)") }
        let note = header["checkpoint"] as? String ?? ""
        guard try String(decoding: read(dir, "checkpoint.txt"), as: UTF8.self) == note else {
            throw Failed(message: "checkpoint.txt is not the checkpoint the export ends at")
        }
        let keys = try LogKeys(
            trusting: try key ?? NoteVerifier(header["verifier_key"] as? String ?? ""),
            successions: header["key_successions"] as? [String] ?? [])
        let cp = try SignedCheckpoint(note: note, verifier: keys).checkpoint
        // The sample: the seed's draw, each entry proven in the checkpoint.
        let sample = try object(try read(dir, "sample.json"), "sample.json")
        let auditorSeed = pack["auditor_seed"] as? String
        guard auditorSeed == sample["auditor_seed"] as? String else {
            throw Failed(message: "sample.json and pack.json name different auditor seeds")
        }
        let seed = EvidenceSample.seed(root: cp.root, auditorSeed: auditorSeed)
        let drawn = EvidenceSample.draw(seed: seed, count: selection.count, k: k)
        guard let listed = sample["entries"] as? [[String: Any]], sample["seed"] as? String == seed.hex,
            listed.count == drawn.count
        else {
            throw Failed(
                message:
                    "sample.json does not hold the \(drawn.count) entries the seed \(seed.hex) draws from the \(selection.count) selected"
            )
        }
        for (i, j) in drawn.enumerated() {
            let e = listed[i]
            let want = selection[j]
            let proof = (e["inclusion"] as? [String] ?? []).compactMap(Hash.init(hex:))
            guard e["index"] as? Int == j, e["seq"] as? Int == Int(exactly: want.seq),
                e["hash"] as? String == want.hash.hex, proof.count == (e["inclusion"] as? [String])?.count,
                Merkle.verifyInclusion(index: want.seq, size: cp.size, leaf: want.hash, proof: proof, root: cp.root)
            else {
                throw Failed(
                    message:
                        "sample.json entry \(i + 1) is not selected entry \(j) (seq \(want.seq)) with its inclusion proof in the checkpoint"
                )
            }
        }
        r.sampled = drawn.count
        // Every figure, recomputed.
        let stated = try object(try read(dir, "summary.json"), "summary.json")
        let computed = try object(EvidencePack.json(summary.json(org: org, from: from, to: to)), "summary")
        guard NSDictionary(dictionary: stated).isEqual(to: computed) else {
            throw Failed(message: "summary.json's figures are not the ones the export's entries give")
        }
        let controls = try object(try read(dir, "controls.json"), "controls.json")
        guard NSDictionary(dictionary: controls).isEqual(to: try object(EvidencePack.json(EvidenceControls.json), ""))
        else {
            throw Failed(message: "controls.json is not the published control mapping")
        }
    }
}
