import AuditBase
import Foundation

/// `report.html` (format-spec.md §9.5): the pack for people, one printable page with no
/// external assets: what was exported and how it was checked, the figures, the sample, the
/// control mapping, and the verification steps in plain words.
public enum EvidenceReport {
    /// A sampled entry as the report shows it.
    public struct Row {
        public var index: Int, seq: UInt64, content: [UInt8]?
        public init(index: Int, seq: UInt64, content: [UInt8]?) {
            self.index = index
            self.seq = seq
            self.content = content
        }
    }

    static func esc(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            default: o.append(c)
            }
        }
        return o
    }

    static func table(_ head: [String], _ rows: [[String]]) -> String {
        "<table><thead><tr>" + head.map { "<th>\(esc($0))</th>" }.joined() + "</tr></thead><tbody>"
            + rows.map { "<tr>" + $0.map { "<td>\(esc($0))</td>" }.joined() + "</tr>" }.joined() + "</tbody></table>"
    }

    static func counts(_ v: Any?) -> [[String]] {
        ((v as? [String: Int]) ?? [:]).sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map {
            [$0.key, String($0.value)]
        }
    }

    /// The page for `summary`, `sample` and the checkpoint the export ends at.
    public static func html(
        org: String, from: String, to: String, checkpoint: String, treeSize: UInt64, cosignatures: Int,
        summary: [String: Any], sample: [Row], seed: String, auditorSeed: String?, timeBounds: [String]
    ) -> String {
        let sampleRows: [[String]] = sample.map { r in
            let o = r.content.flatMap { (try? JSONSerialization.jsonObject(with: Data($0))) as? [String: Any] }
            let actor = EvidenceSummary.actorName(o?["actor"])
            return [
                String(r.index), String(r.seq), o?["received_at"] as? String ?? "(withheld)",
                o?["category"] as? String ?? "", o?["action"] as? String ?? "", o == nil ? "" : actor,
                o?["outcome"] as? String ?? "",
            ]
        }
        let controls = EvidenceControls.byCategory.flatMap { c in
            c.controls.map { [c.category, $0.framework, $0.id, $0.title] }
        }
        let denied = summary["denied_or_failed"] as? [String: Any] ?? [:]
        let privileged = summary["privileged_changes"] as? [String: Any] ?? [:]
        let actors = (summary["top_actors"] as? [[String: Any]] ?? []).map {
            [$0["actor"] as? String ?? "", String($0["consequential"] as? Int ?? 0), String($0["total"] as? Int ?? 0)]
        }
        let entries = summary["entries"] as? Int ?? 0
        let withheld = summary["withheld"] as? Int ?? 0
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Audit evidence: \(esc(org)), \(esc(from)) to \(esc(to))</title>
            <style>
            body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#111;padding:0 1rem}
            h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccc}
            table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
            th{background:#f2f2f2}code,pre{font:12px/1.4 ui-monospace,monospace;background:#f6f6f6}pre{padding:.5rem;overflow-x:auto;white-space:pre-wrap}
            .ok{color:#065f46;font-weight:600}.note{color:#444}
            @media print{body{margin:0;max-width:none}h2{break-after:avoid}table{break-inside:auto}tr{break-inside:avoid}}
            </style></head><body>
            <h1>Audit evidence for org <code>\(esc(org))</code></h1>
            <p>Every entry the org's audit log received from <b>\(esc(from))</b> to <b>\(esc(to))</b>: \(entries) entries\(withheld > 0 ? " (\(withheld) withheld after an erasure: counted, content not shown)" : ""). The export in this pack is complete for that range, and every entry in it is proven part of the log's signed tree of <b>\(treeSize)</b> entries\(cosignatures > 0 ? ", whose checkpoint \(cosignatures) witness\(cosignatures == 1 ? "" : "es") cosigned" : "").</p>
            <h2>How this pack was checked, and how to check it yourself</h2>
            <ol>
            <li>The log signs checkpoints (a tree size and a Merkle root) with its key. Compare the key in <code>VERIFY.md</code> with the one the operator publishes. A log whose key was handed on carries the handovers, each signed by the key it replaced, and the verifiers follow them from that first key.</li>
            <li>The export holds each entry with the hashes that rebuild the checkpoint's root; one changed, added or removed entry makes the root differ. It is proven <span class="ok">complete</span>: no entry of the range is missing.</li>
            <li>The export itself was recorded in the log before it was handed over (its own audit entry is its last line).</li>
            <li>The sample below was drawn from the checkpoint's root hash\(auditorSeed == nil ? "" : " and the auditor's seed") (seed <code>\(esc(seed))</code>): neither the company nor the vendor chose it, and anyone can draw it again.</li>
            <li>Every figure below is computed from the entries in the export; the verifier recomputes each one.</li>
            </ol>
            <p>Commands (see <code>VERIFY.md</code>): <code>auditctl verify-evidence DIR --key KEY</code>, or without our tools <code>python3 verify_export.py export.ndjson --key KEY</code>.</p>
            \(timeBounds.isEmpty ? "" : "<h2>Time</h2><ul>" + timeBounds.map { "<li>\(esc($0))</li>" }.joined() + "</ul>")
            <h2>Figures</h2>
            <h3>By category</h3>\(table(["category", "entries"], counts(summary["by_category"])))
            <h3>By outcome</h3>\(table(["outcome", "entries"], counts(summary["by_outcome"])))
            <h3>Denied and failed actions (\(denied["count"] as? Int ?? 0))</h3>\(table(["action", "entries"], counts(denied["by_action"])))
            <h3>Privileged changes (\(privileged["count"] as? Int ?? 0))</h3>
            <p class="note">Changes to roles, permissions, privileges, retention, legal holds, tokens and policies; exports; org settings.</p>
            \(table(["action", "entries"], counts(privileged["by_action"])))
            <h3>Actors with the most consequential actions</h3>
            <p class="note">Consequential: a privileged change, or an action denied or failed. A person whose identifiers are committed is named by a subject tag (<code>$s:…</code>), not by a personal value.</p>
            \(table(["actor", "consequential", "all entries"], actors))
            <h3>By action</h3>\(table(["action", "entries"], counts(summary["by_action"])))
            <h2>Sample (\(sample.count))</h2>\(table(["#", "seq", "received", "category", "action", "actor", "outcome"], sampleRows))
            <h2>Controls these entries evidence</h2>
            <p class="note">\(esc(EvidenceControls.statement))</p>
            \(table(["category", "framework", "control", "title"], controls))
            <h2>Checkpoint</h2><pre>\(esc(checkpoint))</pre>
            </body></html>

            """
    }
}
