import AuditBase
import ChainIndex
import Foundation
import LogProofs
import SegmentStore
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
import AuditEntries
import LogTree
#endif

/// `auditctl witness serve` over real HTTP on loopback: it cosigns a real log's checkpoints,
/// and what it cosigned survives a kill -9 (a witness that forgot could be rolled back).
@Suite(.serialized) struct WitnessServeTests {
    final class Served {
        let process = ChildProcess()
        var url = ""
        init(_ args: [String]) throws {
            process.executableURL = URL(fileURLWithPath: Daemon.product("auditctl"))
            process.arguments = args
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            let (text, up) = readOutput(out.fileHandleForReading) { t in
                t.range(of: " on http://").map { t[$0.upperBound...].contains("\n") } ?? false
            }
            guard up, let r = text.range(of: " on http://") else {
                throw DaemonFailed(message: "auditctl witness serve did not come up: \(text)")
            }
            url = "http://" + text[r.upperBound...].prefix { !$0.isNewline }
        }
        func kill9() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// A log's key (its daemon started once and stopped) and a witness serving it: the
    /// witness, its verifier key, and the log's.
    static func witnessedLog(_ d: Daemon, name: String = "w1") throws -> (Served, vkey: String, logKey: String) {
        try d.start()
        #expect(d.stop() == 0)
        let logKey = try d.ctl(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let key = d.root + "/\(name).key"
        let vkey = try d.ctl(["witness", "key", "--key", key, "--name", "witness.test/\(name)"]).1.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let served = try Served([
            "witness", "serve", "--key", key, "--state", d.root + "/\(name)-state", "--log", logKey, "--port", "0",
        ])
        return (served, vkey, logKey)
    }

    func post(_ url: String, _ body: String) async throws -> (Int, String, String) {
        var req = URLRequest(url: URL(string: url + "/add-checkpoint")!)
        req.httpMethod = "POST"
        req.httpBody = Data(body.utf8)
        let (data, r) = try await URLSession.shared.data(for: req)
        let h = r as? HTTPURLResponse
        return (
            h?.statusCode ?? 0, String(decoding: data, as: UTF8.self),
            h?.value(forHTTPHeaderField: "Content-Type") ?? ""
        )
    }

    @Test func aServedWitnessCosignsAndRemembersAcrossKill9() async throws {
        let d = Daemon("witness-serve")
        defer { d.cleanup() }
        let signer = try NoteSigner.generate(name: "audit.test/served")
        var o = LedgerOptions()
        o.background = false
        let ledger = try Ledger(directory: d.root + "/log", signer: signer, options: o)
        defer { try? ledger.close() }
        func grow(_ n: Int, from: Int) throws -> SignedCheckpoint {
            _ = try ledger.appendAndWait(
                (from..<from + n).map { i in
                    try Entry.prepare(
                        json: Array(event(org: "org_a", i: i).utf8), receivedAt: 1_767_225_600_000 + Int64(i),
                        writer: Writer(uid: 0, gid: 0, via: "test"))
                })
            try ledger.checkpointNow()
            return try #require(ledger.latestCheckpoint)
        }
        let key = d.root + "/witness.key"
        let state = d.root + "/witness-state"
        let (ks, vkey, kerr) = try d.ctl(["witness", "key", "--key", key, "--name", "witness.test/w1"])
        #expect(ks == 0, "\(kerr)")
        let verifier = try CosignatureVerifier(vkey)
        let args = ["witness", "serve", "--key", key, "--state", state, "--log", signer.verifier.text, "--port", "0"]

        var w = try Served(args)
        let c1 = try grow(12, from: 0)
        let (s1, line1, _) = try await post(w.url, "old 0\n\n" + c1.note)
        #expect(s1 == 200, "\(line1)")
        #expect(try verifier.cosignature(in: c1.note + line1) != nil)

        w.kill9()
        w = try Served(args)
        defer { w.kill9() }
        let (s2, body2, type2) = try await post(w.url, "old 0\n\n" + c1.note)
        #expect(s2 == 409 && body2 == "12\n" && type2.hasPrefix("text/x.tlog.size"), "\(s2) \(body2) \(type2)")
        let c2 = try grow(9, from: 12)
        let proof = try ledger.consistencyProof(old: 12, new: 21).map { Data($0.bytes).base64EncodedString() + "\n" }
            .joined()
        let (s3, line3, _) = try await post(w.url, "old 12\n" + proof + "\n" + c2.note)
        #expect(s3 == 200, "\(line3)")
        #expect(try verifier.cosignature(in: c2.note + line3) != nil)
    }

    /// Issue 10, done when: auditd with two witnesses (quorum 2) gets its checkpoints
    /// cosigned by both; exports carry both cosignatures and verify with --witness; a witness
    /// that goes away leaves ingest untouched and /healthz degraded.
    @Test func auditdWithTwoWitnessesServesAndExportsCosignedCheckpoints() async throws {
        let d = Daemon("witnessed")
        defer { d.cleanup() }
        // The log's key exists from its first start; the witnesses are configured with it.
        try d.start()
        #expect(d.stop() == 0)
        let logKey = try d.ctl(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        var served: [Served] = []
        var vkeys: [String] = []
        defer { for w in served { w.kill9() } }
        for n in 1...2 {
            let key = d.root + "/w\(n).key"
            vkeys.append(
                try d.ctl(["witness", "key", "--key", key, "--name", "witness.test/w\(n)"]).1.trimmingCharacters(
                    in: .whitespacesAndNewlines))
            served.append(
                try Served([
                    "witness", "serve", "--key", key, "--state", d.root + "/w\(n)-state", "--log", logKey, "--port",
                    "0",
                ]))
        }
        d.extraArgs +=
            served.indices.flatMap { ["--witness", "\(served[$0].url) \(vkeys[$0])"] } + [
                "--witness-quorum", "2", "--witness-interval", "1",
            ]
        try d.start()
        let lines = (0..<40).map { event(org: "org_a", i: $0) }.joined(separator: "\n") + "\n"
        let (as1, _, aerr) = try d.ctl(["append", "--socket", d.socket], stdin: lines)
        #expect(as1 == 0, "\(aerr)")
        let op = try d.token(org: nil)
        // The background loop gets the newest checkpoint cosigned by both.
        var cosigned = ""
        for _ in 0..<100 {
            let (s, body) = try await d.http("/v1/checkpoint/cosigned", token: op)
            cosigned = String(decoding: body, as: UTF8.self)
            if s == 200, cosigned.contains("\n40\n") || cosigned.contains("\n41\n") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        for v in vkeys { #expect(try CosignatureVerifier(v).cosignature(in: cosigned) != nil, "\(cosigned)") }
        #expect(try SignedCheckpoint(note: cosigned, verifier: NoteVerifier(logKey)).checkpoint.size >= 40)

        // An export's checkpoint carries both cosignatures.
        let tok = try d.token(org: "org_a")
        let (es, nd) = try await d.http("/v1/orgs/org_a/export", token: tok)
        #expect(es == 200)
        let path = d.root + "/a.ndjson"
        try nd.write(to: URL(fileURLWithPath: path))
        let both = ["--witness", vkeys[0], "--witness", vkeys[1], "--quorum", "2"]
        let (vs, vout, _) = try d.ctl(["verify-export", path, "--key", logKey] + both)
        #expect(vs == 0 && vout.contains("WITNESSED") && vout.contains("OK: complete"), "\(vout)")
        // A witness the export was never shown to cannot be counted.
        let stranger = Cosigner(key: try NoteSigner.generate(name: "witness.test/w3")).verifier.text
        let (ss, sout, _) = try d.ctl([
            "verify-export", path, "--key", logKey, "--witness", vkeys[0], "--witness", stranger, "--quorum", "2",
        ])
        #expect(ss == 1 && sout.contains("1 valid cosignature of the 2 required"), "\(sout)")

        // A writer that keeps only witnessed checkpoints (the client's --witness --quorum).
        let writerState = d.root + "/writer.checkpoint"
        let more = (40..<50).map { event(org: "org_a", i: $0) }.joined(separator: "\n") + "\n"
        let (ws1, _, werr) = try d.ctl(
            ["append", "--socket", d.socket, "--state", writerState, "--key", logKey] + both, stdin: more)
        #expect(ws1 == 0, "\(werr)")
        let kept = try String(contentsOfFile: writerState, encoding: .utf8)
        for v in vkeys { #expect(try CosignatureVerifier(v).cosignature(in: kept) != nil, "\(kept)") }
        let (ws2, _, werr2) = try d.ctl(
            [
                "append", "--socket", d.socket, "--state", writerState, "--key", logKey,
                "--witness", vkeys[0], "--witness", stranger, "--quorum", "2",
            ], stdin: event(org: "org_a", i: 60) + "\n")
        #expect(ws2 == 4 && werr2.contains("1 valid cosignature(s) of the 2 required"), "\(werr2)")

        // One witness goes away: ingest goes on, /healthz says degraded, not failing.
        served[1].kill9()
        let (as2, _, _) = try d.ctl(["append", "--socket", d.socket], stdin: event(org: "org_a", i: 99) + "\n")
        #expect(as2 == 0)
        var health = ""
        for _ in 0..<50 {
            let (_, body) = try await d.http("/healthz", token: nil)
            health = String(decoding: body, as: UTF8.self)
            if health.contains("degraded") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(health.contains("\"degraded\"") && health.contains("witnesses"), "\(health)")
        #expect(d.stop() == 0)
        // The data directory's witnessed checkpoint: verify counts its cosignatures and
        // checks the log extends it.
        let (ws, wout, _) = try d.ctl(["verify", d.data, "--quiet", "--key", logKey] + both)
        #expect(ws == 0 && wout.contains("cosigned by witness.test/w1, witness.test/w2"), "\(wout)")
        let (xs, xout, _) = try d.ctl(["verify", d.data, "--quiet", "--witness", vkeys[1], "--witness", stranger])
        #expect(xs == 1 && xout.contains("1 valid cosignature of the 2 required"), "\(xout)")
    }
}

/// Every writer a witness: `auditctl append --state` keeps the newest checkpoint it verified
/// and checks, over the ingest socket, that the log still extends it.
@Suite(.serialized) struct WriterWitnessTests {
    /// What an operator who wants another history does: stop auditd, remove the data and the
    /// signer state kept beside the key, and start again with the same key.
    static func rollBack(_ d: Daemon) throws {
        #expect(d.stop() == 0)
        try FileManager.default.removeItem(atPath: d.data)
        try? FileManager.default.removeItem(atPath: SignerState.path(forKey: DataDirectory(d.data).defaultKey))
        try d.start()
    }

    @Test func aWriterHoldingACheckpointDetectsARollbackAndAFork() throws {
        let d = Daemon("writer-witness")
        defer { d.cleanup() }
        try d.start()
        let key = try d.ctl(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let state = d.root + "/writer.checkpoint"
        func append(_ range: Range<Int>, org: String = "org_a") throws -> (Int32, String) {
            let lines = range.map { event(org: org, i: $0) }.joined(separator: "\n") + "\n"
            let (s, _, err) = try d.ctl(["append", "--socket", d.socket, "--state", state, "--key", key], stdin: lines)
            return (s, err)
        }
        #expect(try append(0..<30).0 == 0)
        #expect(try append(30..<40).0 == 0)
        let held = try SignedCheckpoint(
            note: String(contentsOfFile: state, encoding: .utf8), verifier: NoteVerifier(key))
        #expect(held.checkpoint.size >= 40)
        let kept = try Data(contentsOf: URL(fileURLWithPath: state))

        // The operator rolls the log back and re-signs it: same key, 20 entries written again.
        try Self.rollBack(d)
        #expect(try d.ctl(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines) == key)
        let (rs, rerr) = try append(0..<20, org: "org_b")
        #expect(rs == 4 && rerr.contains("ROLLBACK"), "\(rerr)")
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: state)) == kept,
            "the kept checkpoint is not replaced by the rolled-back one")
        // The writer refused to write into it; others did, past the size the writer holds:
        // the rewritten history is then a fork.
        let more = (20..<60).map { event(org: "org_b", i: $0) }.joined(separator: "\n") + "\n"
        #expect(try d.ctl(["append", "--socket", d.socket], stdin: more).0 == 0)
        // (Checkpoints follow appends within a second.)
        for _ in 0..<50 {
            let note = try d.ctl(["checkpoint", d.data]).1
            if let size = note.split(separator: "\n").dropFirst().first.flatMap({ UInt64($0) }), size >= 60 { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let (fs, ferr) = try append(60..<61, org: "org_b")
        #expect(fs == 4 && ferr.contains("FORK"), "\(ferr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: state)) == kept)
        #expect(d.stop() == 0)
    }

    /// Issue 23 §2: `append --receipt-format tlog-proof` writes one C2SP tlog-proof per entry,
    /// each of which `verify-receipt` checks against the log, and refuses once edited.
    @Test func receiptsAsTlogProofFilesVerifyOneByOne() throws {
        let d = Daemon("receipts-tlog")
        defer { d.cleanup() }
        try d.start()
        let key = try d.ctl(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let dir = d.root + "/proofs"
        let lines = (0..<30).map { event(org: "org_a", i: $0) }.joined(separator: "\n") + "\n"
        let (s, out, err) = try d.ctl(
            ["append", "--socket", d.socket, "--receipts", dir, "--receipt-format", "tlog-proof", "--key", key],
            stdin: lines)
        #expect(s == 0, "\(err)")
        let seqs = out.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["seq"] as? Int
        }
        #expect(seqs.count == 30)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(Set(files) == Set(seqs.map { "entry-\($0).tlog-proof" }), "\(files)")
        for seq in seqs {
            let file = dir + "/entry-\(seq).tlog-proof"
            let text = try String(contentsOfFile: file, encoding: .utf8)
            #expect(text.hasPrefix("c2sp.org/tlog-proof@v1\nextra ") && text.contains("\nindex \(seq)\n"))
            let (vs, vout, _) = try d.ctl(["verify-receipt", file, "--key", key, "--data", d.data])
            #expect(vs == 0 && vout.contains("OK: 1 receipt"), "\(seq): \(vout)")
        }
        let one = dir + "/entry-\(seqs[3]).tlog-proof"
        let text = try String(contentsOfFile: one, encoding: .utf8)
        try text.replacingOccurrences(of: "\nindex \(seqs[3])\n", with: "\nindex \(seqs[4])\n").write(
            toFile: one, atomically: true, encoding: .utf8)
        let (fs, fout, _) = try d.ctl(["verify-receipt", one, "--key", key])
        #expect(fs == 1 && fout.hasPrefix("FAILED: the tlog-proof"), "\(fout)")
        let (bs, _, berr) = try d.ctl(["append", "--socket", d.socket, "--receipt-format", "pem"], stdin: lines)
        #expect(bs != 0 && berr.contains("is ndjson or tlog-proof"), "\(berr)")
    }

    @Test func receiptsVerifyOfflineAndProveARemoval() throws {
        let d = Daemon("receipts")
        defer { d.cleanup() }
        try d.start()
        let key = try d.ctl(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let receipts = d.root + "/receipts.ndjson"
        let lines = (0..<1500).map { event(org: "org_a", i: $0) }.joined(separator: "\n") + "\n"
        let (s, out, err) = try d.ctl(
            ["append", "--socket", d.socket, "--receipts", receipts, "--key", key], stdin: lines)
        #expect(s == 0, "\(err)")
        let written = try String(contentsOfFile: receipts, encoding: .utf8).split(separator: "\n")
        #expect(written.count == 1500)
        // One checkpoint per INCLUSION request (1,024 entries), not one signature per entry.
        let notes = Set(try written.map { try EntryReceipt(json: String($0)).checkpoint })
        #expect(notes.count <= 2)
        // Each receipt's hash is the one its ACK gave.
        let acks = out.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let first = try EntryReceipt(json: String(written[0]))
        #expect(acks.first?["hash"] as? String == first.hash.hex)

        let (vs, vout, _) = try d.ctl(["verify-receipt", receipts, "--key", key, "--data", d.data])
        #expect(vs == 0 && vout.contains("OK: 1500 receipts"), "\(vout)")
        // An altered receipt does not verify.
        let forged = written[7].replacingOccurrences(of: first.hash.hex, with: String(repeating: "0", count: 64))
        let bad = d.root + "/forged.ndjson"
        try
            (written[0] + "\n" + String(written[7]).replacingOccurrences(of: "\"seq\":7", with: "\"seq\":8") + "\n"
            + forged + "\n").write(toFile: bad, atomically: true, encoding: .utf8)
        let (fs, fout, _) = try d.ctl(["verify-receipt", bad, "--key", key])
        #expect(fs == 1 && fout.contains("line 2") && fout.contains("altered"), "\(fout)")

        // The operator rolls the log back and re-signs 100 entries: the receipts prove it.
        try Self.rollBack(d)
        let again = (0..<100).map { event(org: "org_b", i: $0) }.joined(separator: "\n") + "\n"
        #expect(try d.ctl(["append", "--socket", d.socket], stdin: again).0 == 0)
        #expect(d.stop() == 0)
        let (rs, rout, _) = try d.ctl(["verify-receipt", receipts, "--key", key, "--data", d.data])
        #expect(
            rs == 5 && rout.contains("REMOVED: entry 0") && rout.contains("1500 of 1500 receipted entries"),
            "\(rout.prefix(600))")
    }
}
