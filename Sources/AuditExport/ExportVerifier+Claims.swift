import Archive
import AuditBase
import AuditEntries
import Foundation
import LogProofs

/// What an export's header and last line claim, checked (format-spec.md §9.3): the anchor
/// entry that records the export, the kept checkpoints it must extend, the archived bundles
/// that may explain a gap.
extension ExportVerifier {
    /// The last line must be the export's own audit entry, at exactly `size − 1`, whose signed
    /// metadata states this file's format and the header's filter.
    func checkAnchor(_ last: Line?, size: UInt64, org: String, filter: [String: String], format: String) -> String? {
        guard let a = last, a.seq + 1 == size else {
            return
                "the export does not end with its own audit entry at seq \(size == 0 ? 0 : size - 1), the last leaf of its checkpoint: entries were removed from its end"
        }
        guard let v = try? Entry.decodeStored(a.content), v["category"]?.stringValue == "privacy",
            v["action"]?.stringValue == "audit_log.exported",
            v["org"]?.stringValue == org, case .object(let meta)? = v["metadata"]
        else {
            return
                "entry \(a.seq), the last, is not the export's own audit entry (privacy, audit_log.exported, of org \(org))"
        }
        var signed: [String: String] = [:]
        var textSearch = false
        for m in meta {
            if m.key == "filter.text_search" {
                textSearch = m.value == .bool(true)
                continue
            }
            if m.key.hasPrefix("filter."), let s = m.value.stringValue { signed[String(m.key.dropFirst(7))] = s }
        }
        if meta.first(where: { $0.key == "format" })?.value.stringValue != format {
            return "the export's signed audit entry \(a.seq) was for another format than this \(format) file"
        }
        var stated = filter
        let q = stated.removeValue(forKey: "q")
        guard stated == signed, textSearch == (q != nil) else {
            func show(_ d: [String: String], _ t: Bool) -> String {
                let s = d.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } + (t ? ["q=…"] : [])
                return s.isEmpty ? "none" : s.joined(separator: " ")
            }
            return
                "the header's filter (\(show(stated, q != nil))) is not the one the export's signed audit entry \(a.seq) recorded (\(show(signed, textSearch)))"
        }
        return nil
    }

    /// Each kept checkpoint must be the export's or be extended by it (the header's
    /// `consistency` proof from its size).
    func checkKept(_ cp: SignedCheckpoint, keys: LogKeys, consistency: Any?) -> String? {
        for note in kept {
            let k: SignedCheckpoint
            do { k = try SignedCheckpoint(note: note, verifier: keys) } catch {
                return "the kept checkpoint is not one the trusted key (or a key it handed on to) signed: \(error)"
            }
            guard k.checkpoint.origin == cp.checkpoint.origin else {
                return "the kept checkpoint is for log \(k.checkpoint.origin), not \(cp.checkpoint.origin)"
            }
            let old = k.checkpoint.size
            let new = cp.checkpoint.size
            if old == new {
                if k.checkpoint.root != cp.checkpoint.root {
                    return
                        "the export's checkpoint and the kept one both have size \(new) but different roots: the log forked"
                }
                continue
            }
            guard old < new else {
                return
                    "the export's tree (size \(new)) is older than the kept checkpoint (size \(old)): it cannot show the log still holds what that checkpoint covered; export again"
            }
            guard let c = consistency as? [String: Any], c["from"] as? Int == Int(exactly: old),
                let hex = c["proof"] as? [String]
            else {
                return
                    "the export carries no consistency proof from the kept checkpoint's size \(old): request it with ?consistency_from=\(old)"
            }
            let proof = hex.compactMap { Hash(hex: $0) }
            guard proof.count == hex.count,
                Merkle.verifyConsistency(
                    old: old, new: new, oldRoot: k.checkpoint.root, newRoot: cp.checkpoint.root, proof: proof)
            else {
                return
                    "the export's checkpoint (size \(new)) does not extend the kept one (size \(old)): the log was rolled back or forked"
            }
        }
        return nil
    }
}

/// An archived bundle an export names (format-spec.md §9.3), read from its manifest, which the
/// log's key signs (§12.3): its seq range and how many of the export's org's entries it holds.
struct SignedBundle {
    var name: String
    var firstSeq: UInt64
    var endSeq: UInt64
    var entries: UInt64

    /// The header's `archived_bundles`: the bundles whose manifests verify, and the names of
    /// those given without a manifest (which can explain no gap). A manifest that does not
    /// verify, or a malformed list, is an error.
    static func read(_ value: Any?, org: String, key: LogKeys) throws -> ([SignedBundle], [String]) {
        guard let list = value as? [[String: Any]] else {
            throw AuditError("archived_bundles is not a list of objects")
        }
        var out: [SignedBundle] = []
        var unsigned: [String] = []
        for o in list {
            guard let name = o["bundle"] as? String, let note = o["manifest_note"] as? String else {
                throw AuditError("an archived bundle lacks its name or manifest_note")
            }
            guard let manifest = o["manifest"] as? String else {
                unsigned.append(name)
                continue
            }
            let sha = SHA256.hash(Array(manifest.utf8)).hex
            guard let m = try? JSONDecoder().decode(ArchivedStub.ManifestSummary.self, from: Data(manifest.utf8)),
                m.first_seq < m.end_seq,
                let text = try? key.open(note),
                text == ArchivedStub.manifestNoteText(origin: key.name, segment: m.segment, sha256: sha)
            else {
                throw AuditError(
                    "archived bundle \(name): its manifest is not one the log's key signed (edited, or another log's)")
            }
            out.append(
                SignedBundle(
                    name: name, firstSeq: m.first_seq, endSeq: m.end_seq,
                    entries: m.orgs.first { $0.org == org }?.entries ?? 0))
        }
        return (out, unsigned)
    }
}
