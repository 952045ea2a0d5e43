import ChainIndex
import Foundation
import LogProofs
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
import AuditEntries
#endif

/// Issue 18, items 3 and 5: the served witness parses as strictly as C2SP tlog-witness and
/// tlog-checkpoint say, and no two witness processes ever share one state.
@Suite(.serialized) struct WitnessStrictTests {
    @Test func aSecondWitnessOnTheSameStateRefusesToStart() throws {
        let d = Daemon("witness-lock")
        defer { d.cleanup() }
        let signer = try NoteSigner.generate(name: "audit.test/locked")
        let key = d.root + "/w.key"
        _ = try d.ctl(["witness", "key", "--key", key, "--name", "witness.test/w"])
        let args = [
            "witness", "serve", "--key", key, "--state", d.root + "/state", "--log", signer.verifier.text, "--port",
            "0",
        ]
        let first = try WitnessServeTests.Served(args)
        defer { first.kill9() }
        // The second must exit by itself, saying why; on a shared state it would serve forever.
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: Daemon.product("auditctl"))
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        let deadline = Date().addingTimeInterval(10)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let stillRunning = p.isRunning
        if stillRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(!stillRunning && p.terminationStatus != 0, "a second witness started on the same state directory")
        #expect(text.contains("another witness process"), "\(text)")
    }

    @Test func malformedRequestsAreRefusedAsTheSpecSays() async throws {
        let d = Daemon("witness-strict")
        defer { d.cleanup() }
        let signer = try NoteSigner.generate(name: "audit.test/strict")
        var o = LedgerOptions()
        o.background = false
        let ledger = try Ledger(directory: d.root + "/log", signer: signer, options: o)
        defer { try? ledger.close() }
        _ = try ledger.appendAndWait(
            (0..<8).map { i in
                try Entry.prepare(
                    json: Array(event(org: "org_a", i: i).utf8), receivedAt: 1_767_225_600_000 + Int64(i),
                    writer: Writer(uid: 0, gid: 0, via: "test"))
            })
        try ledger.checkpointNow()
        let cp = try #require(ledger.latestCheckpoint)
        let key = d.root + "/w.key"
        _ = try d.ctl(["witness", "key", "--key", key, "--name", "witness.test/w"])
        let w = try WitnessServeTests.Served([
            "witness", "serve", "--key", key, "--state", d.root + "/state", "--log", signer.verifier.text, "--port",
            "0",
        ])
        defer { w.kill9() }
        let post = WitnessServeTests().post
        let body = cp.checkpoint.text

        // An empty line after the root: not a checkpoint, whatever signs it.
        let (s1, m1, _) = try await post(w.url, "old 0\n\n" + (try signer.sign(body + "\nextra\n")))
        #expect(s1 == 400, "\(s1) \(m1)")
        // A root in non-canonical base64 (the last character's unused bits set).
        // (32 bytes take 43 characters and a "=": the last character's two low bits are unused.)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        var chars = Array(Data(cp.checkpoint.root.bytes).base64EncodedString())
        chars[42] = alphabet[(alphabet.firstIndex(of: chars[42]) ?? 0) ^ 1]
        let root = String(chars)
        #expect(
            Data(base64Encoded: root).map(Array.init) == cp.checkpoint.root.bytes, "the same bytes, spelled otherwise")
        let (s2, m2, _) = try await post(
            w.url, "old 0\n\n" + (try signer.sign("\(cp.checkpoint.origin)\n\(cp.checkpoint.size)\n\(root)\n")))
        #expect(s2 == 400, "\(s2) \(m2)")
        // A malformed note (a signature line without its em dash) is 400, not 403.
        let (s3, m3, _) = try await post(w.url, "old 0\n\n" + cp.note + "- not a signature line\n")
        #expect(s3 == 400, "\(s3) \(m3)")
        // A well-formed note without the log's signature is 403.
        let other = try NoteSigner.generate(name: "audit.test/strict")
        let (s4, m4, _) = try await post(w.url, "old 0\n\n" + (try other.sign(body)))
        #expect(s4 == 403, "\(s4) \(m4)")
        // GET on add-checkpoint is 405.
        var get = URLRequest(url: try #require(URL(string: w.url + "/add-checkpoint")))
        get.httpMethod = "GET"
        let (_, gr) = try await URLSession.shared.data(for: get)
        #expect((gr as? HTTPURLResponse)?.statusCode == 405)

        // Cosigned once; then the same size and root with a proof line is 422, not "forked".
        let (s5, m5, _) = try await post(w.url, "old 0\n\n" + cp.note)
        #expect(s5 == 200, "\(m5)")
        let junk = Data(repeating: 7, count: 32).base64EncodedString()
        let (s6, m6, _) = try await post(w.url, "old \(cp.checkpoint.size)\n\(junk)\n\n" + cp.note)
        #expect(s6 == 422, "\(s6) \(m6)")
        // A non-canonical proof line is 400.
        _ = try ledger.appendAndWait([
            try Entry.prepare(
                json: Array(event(org: "org_a", i: 99).utf8), receivedAt: 1_767_225_700_000,
                writer: Writer(uid: 0, gid: 0, via: "test"))
        ])
        try ledger.checkpointNow()
        let cp2 = try #require(ledger.latestCheckpoint)
        var proof = try ledger.consistencyProof(old: cp.checkpoint.size, new: cp2.checkpoint.size).map {
            Data($0.bytes).base64EncodedString()
        }
        proof[0] = String(proof[0].dropLast()) + " ="
        let (s7, m7, _) = try await post(
            w.url, "old \(cp.checkpoint.size)\n" + proof.map { $0 + "\n" }.joined() + "\n" + cp2.note)
        #expect(s7 == 400, "\(s7) \(m7)")
    }
}
