import AuditBase
import Foundation
import TestSupport
import Testing

/// The auditor's evidence pack (format-spec.md §9.5) from the real daemon: written by
/// `auditctl evidence`, unpacked by the system's tar, checked by `verify-evidence` and by the
/// spec-only verifier; an edited figure, sample, export or file fails both.
@Suite struct EvidencePackTests {
    func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in
            Thread.detachNewThread { c.resume(with: Result { try body() }) }
        }
    }

    /// Both verifiers on the pack folder `dir`.
    func verify(_ d: Daemon, _ key: String, _ dir: String) async throws -> ((Int32, String), (Int32, String)) {
        try await offPool {
            let (s, out, err) = try d.ctl(["verify-evidence", dir, "--key", key])
            let py = try ExportProofTests.python([ExportProofTests.script, "--evidence", dir, "--key", key])
            return ((s, out + err), py)
        }
    }

    func json(_ path: String) throws -> [String: Any] {
        try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    func write(_ o: Any, _ path: String) throws {
        try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .prettyPrinted]).write(
            to: URL(fileURLWithPath: path))
    }

    /// A copy of pack `dir` with `change` made and pack.json's hashes brought up to date (a
    /// forger would): only the content checks can catch it.
    func forged(_ dir: String, _ name: String, _ change: (String) throws -> Void) throws -> String {
        let copy = dir + "-" + name
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: dir, toPath: copy)
        try change(copy)
        var pack = try json(copy + "/pack.json")
        var hashes = pack["files"] as? [String: String] ?? [:]
        for f in hashes.keys {
            hashes[f] = SHA256.hash(Array(try Data(contentsOf: URL(fileURLWithPath: copy + "/" + f)))).hex
        }
        pack["files"] = hashes
        try write(pack, copy + "/pack.json")
        return copy
    }

    @Test func aPackIsWrittenUnpackedAndCheckedAndEveryEditFails() async throws {
        let d = Daemon("evidence")
        defer { d.cleanup() }
        try await offPool { try d.start() }
        defer { _ = d.stop() }
        var input = ""
        for i in 0..<120 {
            input +=
                event(
                    org: "acme", i: i, category: i % 7 == 0 ? "org_settings" : "access",
                    outcome: i % 5 == 0 ? "denied" : "success") + "\n"
        }
        let half = input.split(separator: "\n").map(String.init)
        let (as_, _, aerr) = try await d.ctlOffPool(
            ["append", "--socket", d.socket], stdin: half.prefix(60).joined(separator: "\n") + "\n")
        #expect(as_ == 0, "\(aerr)")
        let token = try await offPool { try d.token(org: "acme") }
        // A checkpoint the auditor kept from an earlier visit: the pack proves the log extends it.
        var kept = ""
        for _ in 0..<100 {
            let (cs, note) = try await d.http("/v1/checkpoint", token: token)
            kept = String(decoding: note, as: UTF8.self)
            if cs == 200, kept.split(separator: "\n").dropFirst().first.flatMap({ Int($0) }) ?? 0 >= 60 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        try kept.write(toFile: d.root + "/kept.note", atomically: true, encoding: .utf8)
        let (bs, _, berr) = try await d.ctlOffPool(
            ["append", "--socket", d.socket], stdin: half.dropFirst(60).joined(separator: "\n") + "\n")
        #expect(bs == 0, "\(berr)")
        let key = try await d.ctlOffPool(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let out = d.root + "/pack"
        let (s, o, e) = try await d.ctlOffPool([
            "evidence", d.data, "--org", "acme", "--from", "2020-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z",
            "--out", out, "--sample", "12", "--seed", "auditor-2026", "--url", "http://127.0.0.1:\(d.port)", "--token",
            token, "--since-checkpoint", d.root + "/kept.note",
        ])
        #expect(s == 0 && o.contains("complete; sample of 12"), "\(o)\(e)\n\(d.logTail())")

        // The system's tar reads the archive; it holds the same files.
        let (ts, tout) = try await runProgramOffPool("/bin/tar", ["-tf", out + ".tar"])
        #expect(ts == 0, "\(tout)")
        #expect(
            Set(tout.split(separator: "\n").map(String.init)).isSuperset(of: [
                "pack.json", "report.html", "sample.json",
            ]))
        // It carries the spec-only verifier as the repository has it.
        let carried = try Data(contentsOf: URL(fileURLWithPath: out + "/verify_export.py"))
        #expect(carried == (try Data(contentsOf: URL(fileURLWithPath: ExportProofTests.script))))
        let summary = try json(out + "/summary.json")
        #expect(summary["entries"] as? Int ?? 0 >= 120)
        #expect((summary["denied_or_failed"] as? [String: Any])?["count"] as? Int == 24)
        #expect(((summary["privileged_changes"] as? [String: Any])?["count"] as? Int ?? 0) >= 18)
        let report = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        #expect(report.contains("<table>") && !report.contains("http://") && !report.contains("https://"))

        let ((vs, vout), (ps, pout)) = try await verify(d, key, out)
        #expect(vs == 0 && vout.contains("OK: evidence pack"), "\(vout)")
        #expect(ps == 0 && pout.contains("OK: evidence pack"), "\(pout)")
        let (tvs, tvout, _) = try await d.ctlOffPool([
            "verify-evidence", out + ".tar", "--key", key, "--since-checkpoint", d.root + "/kept.note",
        ])
        #expect(tvs == 0, "\(tvout)")
        let header = try #require(
            try JSONSerialization.jsonObject(
                with: Data(
                    try String(contentsOfFile: out + "/export.ndjson", encoding: .utf8).prefix { $0 != "\n" }.utf8))
                as? [String: Any])
        #expect(
            (header["consistency"] as? [String: Any])?["from"] as? Int ?? 0 >= 60,
            "no consistency proof in \(header.keys)")

        // Edits a forger would make, pack.json's hashes fixed up each time.
        var forgeries: [(String, String)] = []
        forgeries.append(
            (
                "figure",
                try forged(out, "figure") { dir in
                    var s = try json(dir + "/summary.json")
                    var dof = s["denied_or_failed"] as? [String: Any] ?? [:]
                    dof["count"] = (dof["count"] as? Int ?? 0) - 1
                    s["denied_or_failed"] = dof
                    try write(s, dir + "/summary.json")
                }
            ))
        forgeries.append(
            (
                "sample",
                try forged(out, "sample") { dir in
                    var s = try json(dir + "/sample.json")
                    var list = s["entries"] as? [[String: Any]] ?? []
                    list.swapAt(0, 1)
                    s["entries"] = list
                    try write(s, dir + "/sample.json")
                }
            ))
        forgeries.append(
            (
                "seed",
                try forged(out, "seed") { dir in
                    var p = try json(dir + "/pack.json")
                    p["auditor_seed"] = "another"
                    try write(p, dir + "/pack.json")
                    var s = try json(dir + "/sample.json")
                    s["auditor_seed"] = "another"
                    try write(s, dir + "/sample.json")
                }
            ))
        forgeries.append(
            (
                "export",
                try forged(out, "export") { dir in
                    var lines = try String(contentsOfFile: dir + "/export.ndjson", encoding: .utf8).split(
                        separator: "\n")
                    lines.remove(at: 3)
                    try (lines.joined(separator: "\n") + "\n").write(
                        toFile: dir + "/export.ndjson", atomically: true, encoding: .utf8)
                }
            ))
        forgeries.append(
            (
                "controls",
                try forged(out, "controls") { dir in
                    var c = try json(dir + "/controls.json")
                    c["statement"] = "These controls are certified."
                    try write(c, dir + "/controls.json")
                }
            ))
        for (name, dir) in forgeries {
            let ((fs, fout), (fps, fpout)) = try await verify(d, key, dir)
            #expect(fs == 1 && fout.hasPrefix("FAILED"), "\(name): \(fout)")
            #expect(fps == 1 && fpout.hasPrefix("FAILED"), "\(name): \(fpout)")
        }
        // A file changed without pack.json knowing.
        try (report + "<!-- edited -->").write(toFile: out + "/report.html", atomically: true, encoding: .utf8)
        let ((rs, rout), (rps, rpout)) = try await verify(d, key, out)
        #expect(
            rs == 1 && rout.contains("report.html") && rps == 1 && rpout.contains("report.html"), "\(rout)\n\(rpout)")

        // HEAD makes nothing: no export is recorded.
        func exports() async throws -> Int {
            let page = try await d.json("/v1/orgs/acme/entries?action=audit_log.exported&limit=1000", token: token)
            return ((page["entries"] as? [[String: Any]]) ?? []).count
        }
        let recorded = try await exports()
        let (head, _) = try await d.http(
            "/v1/orgs/acme/evidence?from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z", token: token, method: "HEAD")
        #expect(head == 200)
        #expect(try await exports() == recorded, "a HEAD recorded an export")
        // Only a time range makes a pack; the read port says so.
        let (hs, body) = try await d.http(
            "/v1/orgs/acme/evidence?from=2020-01-01T00:00:00Z&category=access", token: token)
        #expect(hs == 400 && String(decoding: body, as: UTF8.self).contains("time range"))
    }
}
