import AuditBase
import ChainIndex
import Foundation
import LogProofs
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Issue 25 §3, done when: the real daemon's key is rotated twice while writers write; an
/// export across both rotations verifies with the first key only (auditctl and the spec-only
/// Python verifier); a forged succession (signed by the new key alone) is refused; the
/// witness and a writer that hold the first key follow; the daemon restarts on the newest key.
@Suite(.serialized) struct KeyRotationDaemonTests {
    /// Appends batches on its own thread until stopped: the load the rotations run under.
    final class Load: @unchecked Sendable {
        let d: Daemon
        private let lock = NSLock()
        private var stopped = false
        private(set) var batches = 0
        private(set) var failures: [String] = []
        private let done = DispatchSemaphore(value: 0)

        init(_ d: Daemon) {
            self.d = d
            Thread.detachNewThread { self.run() }
        }

        private func run() {
            var i = 10_000
            while !lock.withLock({ stopped }) && lock.withLock({ batches }) < Self.limit {
                let lines = (i..<i + 50).map { event(org: "org_a", i: $0) }.joined(separator: "\n") + "\n"
                i += 50
                do {
                    let (s, _, err) = try d.ctl(["append", "--socket", d.socket], stdin: lines)
                    lock.withLock {
                        if s == 0 { batches += 1 } else { failures.append(err) }
                    }
                } catch { lock.withLock { failures.append("\(error)") } }
            }
            done.signal()
        }

        /// Waits until at least `n` more batches went in (at most two minutes: a load that
        /// stalls shows as too few batches, not as a hung test).
        /// At most this many batches (6,000 entries): on a loaded machine the rotations take
        /// longer, and the export and the pack that follow should not grow with them.
        static let limit = 120

        func waitFor(batches n: Int) {
            let start = lock.withLock { batches }
            let deadline = Date().addingTimeInterval(120)
            while lock.withLock({ batches }) < min(start + n, Self.limit) && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.05)
            }
        }

        /// `waitFor` on a thread of its own: the test's task must not hold a pool thread.
        func waitOffPool(batches n: Int) async {
            await withCheckedContinuation { c in
                Thread.detachNewThread {
                    self.waitFor(batches: n)
                    c.resume()
                }
            }
        }

        func stop() -> (batches: Int, failures: [String]) {
            lock.withLock { stopped = true }
            done.wait()
            return lock.withLock { (batches, failures) }
        }
    }

    static func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in Thread.detachNewThread { c.resume(returning: body()) } }
    }

    /// The spec-only verifier, on a thread of its own.
    static func python(_ args: [String]) async throws -> (Int32, String) {
        try await withCheckedThrowingContinuation { c in
            Thread.detachNewThread { c.resume(with: Result { try ExportProofTests.python(args) }) }
        }
    }

    @Test func rotatedTwiceUnderLoadAnExportVerifiesWithTheFirstKeyOnly() async throws {
        let d = Daemon("key-rotation")
        defer { d.cleanup() }
        let (witness, wkey, first) = try WitnessServeTests.witnessedLog(d)
        defer { witness.kill9() }
        d.extraArgs += ["--witness", "\(witness.url) \(wkey)", "--witness-quorum", "1", "--witness-interval", "1"]
        try d.start()
        let origin = String(first.prefix { $0 != "+" })
        let writerState = d.root + "/writer.checkpoint"
        func writer(_ i: Int) async throws -> (Int32, String) {
            let (s, _, err) = try await d.ctlOffPool(
                ["append", "--socket", d.socket, "--state", writerState, "--key", first],
                stdin: event(org: "org_a", i: i) + "\n")
            return (s, err)
        }
        #expect(try await writer(0).0 == 0)

        let load = Load(d)
        var newKeys: [String] = []
        for (n, grace) in [(2, "40"), (3, "0")] {
            await load.waitOffPool(batches: 3)
            let path = d.root + "/k\(n).key"
            let (gs, gout, gerr) = try await d.ctlOffPool(["key", "generate", "--name", origin, "--out", path])
            #expect(gs == 0, "\(gerr)")
            newKeys.append(gout.trimmingCharacters(in: .whitespacesAndNewlines))
            let (rs, rout, rerr) = try await d.ctlOffPool([
                "key", "rotate", d.data, "--new-key", path, "--grace", grace,
            ])
            #expect(rs == 0 && rout.contains("handed the log's key on to \(newKeys.last ?? "")"), "\(rout)\(rerr)")
            // The writer holding only the first key follows, between the rotations and after.
            let (ws, werr) = try await writer(n)
            #expect(ws == 0, "\(werr)")
        }
        await load.waitOffPool(batches: 3)
        let (batches, failures) = await Self.offPool { load.stop() }
        #expect(failures.isEmpty, "\(failures.prefix(3))")
        #expect(batches >= 9)
        let (cs, chain, _) = try await d.ctlOffPool(["key", d.data, "--chain"])
        #expect(
            cs == 0 && chain.hasPrefix(first) && chain.contains(newKeys[0]) && chain.contains(newKeys[1]), "\(chain)")
        let followed = try JSONDecoder().decode(
            [String].self, from: Data(contentsOf: URL(fileURLWithPath: writerState + ".keys")))
        #expect(followed.count == 2)
        // Receipts written now carry the statements: the first key alone checks them offline.
        let receipts = d.root + "/receipts.jsonl"
        let (as1, _, aerr) = try await d.ctlOffPool(
            ["append", "--socket", d.socket, "--receipts", receipts, "--key", first],
            stdin: (500..<505).map { event(org: "org_a", i: $0) }.joined(separator: "\n") + "\n")
        #expect(as1 == 0, "\(aerr)")
        let (rs, rout, rerr) = try await d.ctlOffPool(["verify-receipt", receipts, "--key", first])
        #expect(rs == 0 && rout.hasPrefix("OK: 5 receipts verify with \(first)"), "\(rout)\(rerr)")

        // The export spans both handovers; its checkpoint is the newest key's, which the first
        // key alone cannot open.
        let tok = try d.token(org: "org_a")
        let path = d.root + "/a.ndjson"
        var text = ""
        for _ in 0..<100 {
            let (s, body) = try await d.http("/v1/orgs/org_a/export", token: tok)
            #expect(s == 200)
            text = String(decoding: body, as: UTF8.self)
            // Wait for the witness to follow and cosign a checkpoint only the newest key signed.
            if text.contains("witness.test/w1") { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let header = try #require(
            try JSONSerialization.jsonObject(with: Data(text.prefix { $0 != "\n" }.utf8)) as? [String: Any])
        #expect(header["verifier_key"] as? String == first)
        let notes = try #require(header["key_successions"] as? [String])
        #expect(notes.count == 2)
        let note = try #require(header["checkpoint"] as? String)
        #expect(throws: Note.Failure.self) { try NoteVerifier(first).open(note) }
        #expect(throws: Note.Failure.self) { try NoteVerifier(newKeys[0]).open(note) }
        // The witness, configured with the first key only, was sent both statements and
        // followed them: it cosigned that checkpoint.
        let witnessed = try JSONDecoder().decode(
            [String: [String]].self, from: Data(contentsOf: URL(fileURLWithPath: d.root + "/w1-state/key-successions")))
        #expect(witnessed[origin] == notes)
        let (vs, vout, _) = try await d.ctlOffPool(["verify-export", path, "--key", first, "--witness", wkey])
        #expect(vs == 0 && vout.contains("OK: complete") && vout.contains("WITNESSED"), "\(vout)")
        #expect(vout.contains("KEYS: the log's key was handed on 2 times") && vout.contains(newKeys[1]), "\(vout)")
        let (ps, pout) = try await Self.python([ExportProofTests.script, path, "--key", first])
        #expect(
            ps == 0 && pout.contains("OK: complete") && pout.contains("KEYS: the log's key was handed on 2 times"),
            "\(pout)")

        // An evidence pack across both handovers: both verifiers, with the first key only.
        let pack = d.root + "/pack"
        let (es, eout, eerr) = try await d.ctlOffPool([
            "evidence", d.data, "--org", "org_a", "--from", "2020-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z",
            "--out", pack, "--sample", "5", "--url", "http://127.0.0.1:\(d.port)", "--token", tok,
        ])
        #expect(es == 0 && eout.contains("complete; sample of 5"), "\(eout)\(eerr)")
        let (ves, vesout, _) = try await d.ctlOffPool(["verify-evidence", pack + ".tar", "--key", first])
        #expect(ves == 0 && vesout.hasPrefix("OK: evidence pack of org org_a"), "\(vesout)")
        let (pes, pesout) = try await Self.python([ExportProofTests.script, "--evidence", pack, "--key", first])
        #expect(pes == 0 && pesout.contains("OK: evidence pack"), "\(pesout)")

        // A forged succession: the second statement replaced by one handing the log (from the
        // second key) to an attacker's key, signed by that key alone. Both verifiers refuse.
        let attacker = try NoteSigner.generate(name: origin)
        let forgedText = KeySuccession.text(
            origin: origin, old: try NoteVerifier(newKeys[0]), new: attacker.verifier, handover: 2, graceEnd: 2)
        var forgedHeader = header
        forgedHeader["key_successions"] = [notes[0], try attacker.sign(forgedText)]
        let forged = d.root + "/forged.ndjson"
        let rest = text.drop { $0 != "\n" }
        // The export with its header replaced by `h`, at `forged`.
        func writeForged(_ h: [String: Any]) throws {
            let line = String(
                decoding: try JSONSerialization.data(withJSONObject: h, options: [.sortedKeys]), as: UTF8.self)
            try (line + rest).write(toFile: forged, atomically: true, encoding: .utf8)
        }
        try writeForged(forgedHeader)
        let (fs, fout, _) = try await d.ctlOffPool(["verify-export", forged, "--key", first])
        #expect(fs == 1 && fout.contains("not signed by the key it replaces"), "\(fout)")
        let (fps, fpout) = try await Self.python([ExportProofTests.script, forged, "--key", first])
        #expect(fps != 0 && fpout.contains("FAILED"), "\(fpout)")
        // The witness refuses it too: the key in force for it is the third.
        let attackerOnThird = try attacker.sign(
            KeySuccession.text(
                origin: origin, old: try NoteVerifier(newKeys[1]), new: attacker.verifier, handover: 1 << 40,
                graceEnd: 1 << 40))
        var req = URLRequest(url: try #require(URL(string: witness.url + "/add-key-succession")))
        req.httpMethod = "POST"
        req.httpBody = Data(attackerOnThird.utf8)
        let (wbody, wr) = try await URLSession.shared.data(for: req)
        #expect(
            (wr as? HTTPURLResponse)?.statusCode == 400
                && String(decoding: wbody, as: UTF8.self).contains("not signed by the key it replaces"),
            "\(String(decoding: wbody, as: UTF8.self))")
        // Statements that are not statements fail, never pass as none.
        forgedHeader["key_successions"] = [1, 2]
        try writeForged(forgedHeader)
        let (ms, mout, _) = try await d.ctlOffPool(["verify-export", forged, "--key", first])
        #expect(ms == 1 && mout.contains("key_successions is not a list"), "\(mout)")
        let (mps, mpout) = try await Self.python([ExportProofTests.script, forged, "--key", first])
        #expect(mps == 1 && mpout.contains("FAILED"), "\(mpout)")
        // Without the statements the first key checks nothing past its grace.
        forgedHeader["key_successions"] = nil
        try writeForged(forgedHeader)
        let (ns, nout, _) = try await d.ctlOffPool(["verify-export", forged, "--key", first])
        #expect(ns == 1 && nout.contains("FAILED"), "\(nout)")

        // The daemon restarts on the newest key (the key file was replaced), and the whole data
        // directory verifies with the first key.
        #expect(d.stop() == 0)
        try d.start()
        #expect(try await writer(99).0 == 0)
        #expect(d.stop() == 0)
        let (ds, dout, _) = try await d.ctlOffPool(["verify", d.data, "--quiet", "--key", first])
        #expect(ds == 0 && dout.contains("OK"), "\(dout)")
    }

    /// kill -9 of auditd at four moments of a rotation (before, during and after its entry,
    /// its statement and the key file's replacement): each restart comes up on the one key
    /// the log has in force (an interrupted replacement finished at start), takes writes, and
    /// the log verifies with the first key.
    @Test func aKill9DuringARotationLeavesOneKeyInForceAndTheLogVerifiable() async throws {
        let d = Daemon("key-rotation-kill")
        defer { d.cleanup() }
        try d.start()
        let first = try await d.ctlOffPool(["key", d.data]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let origin = String(first.prefix { $0 != "+" })
        let batch = (0..<20).map { event(org: "org_a", i: $0) }.joined(separator: "\n") + "\n"
        #expect(try await d.ctlOffPool(["append", "--socket", d.socket], stdin: batch).0 == 0)
        for (n, delay) in [(2, 0), (3, 2), (4, 10), (5, 40)] {
            let path = d.root + "/k\(n).key"
            #expect(try await d.ctlOffPool(["key", "generate", "--name", origin, "--out", path]).0 == 0)
            let rotation = ChildProcess()
            rotation.executableURL = URL(fileURLWithPath: Daemon.product("auditctl"))
            rotation.arguments = ["key", "rotate", d.data, "--new-key", path, "--grace", "0", "--socket", d.socket]
            rotation.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            rotation.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try rotation.run()
            await Self.offPool {
                Thread.sleep(forTimeInterval: Double(delay) / 1000)
                d.kill9()
                rotation.waitUntilExit()
            }
            try d.start()
            let keys = try Ledger.verifierKey(directory: d.data)
            let held = try KeyFile.load(path: DataDirectory(d.data).defaultKey)
            #expect(held.verifier == keys.current, "restart \(n): the key file is not the key in force")
            let (s, _, err) = try await d.ctlOffPool(["append", "--socket", d.socket], stdin: batch)
            #expect(s == 0, "restart \(n): \(err)\n\(d.logTail())")
        }
        // Whatever the kills left, the next rotation goes through.
        let last = d.root + "/k6.key"
        #expect(try await d.ctlOffPool(["key", "generate", "--name", origin, "--out", last]).0 == 0)
        let (rs, rout, rerr) = try await d.ctlOffPool(["key", "rotate", d.data, "--new-key", last, "--grace", "0"])
        #expect(rs == 0, "\(rout)\(rerr)")
        #expect(d.stop() == 0)
        let (vs, vout, _) = try await d.ctlOffPool(["verify", d.data, "--quiet", "--key", first])
        #expect(vs == 0 && vout.contains("OK"), "\(vout)")
    }
}
