import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import ChainIndex
import SegmentStore

/// `auditctl witness serve` over real HTTP on loopback: it cosigns a real log's checkpoints,
/// and what it cosigned survives a kill -9 (a witness that forgot could be rolled back).
@Suite(.serialized) struct WitnessServeTests {
    final class Served {
        let process = Process()
        var url = ""
        init(_ args: [String]) throws {
            process.executableURL = URL(fileURLWithPath: Daemon.product("auditctl"))
            process.arguments = args
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            var text = ""
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                let d = out.fileHandleForReading.availableData
                if d.isEmpty { break }
                text += String(decoding: d, as: UTF8.self)
                if let r = text.range(of: " on http://") {
                    url = "http://" + text[r.upperBound...].prefix { !$0.isNewline }
                    return
                }
            }
            throw DaemonFailed(message: "auditctl witness serve did not come up: \(text)")
        }
        func kill9() { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }

    func post(_ url: String, _ body: String) async throws -> (Int, String, String) {
        var req = URLRequest(url: URL(string: url + "/add-checkpoint")!)
        req.httpMethod = "POST"
        req.httpBody = Data(body.utf8)
        let (data, r) = try await URLSession.shared.data(for: req)
        let h = r as? HTTPURLResponse
        return (h?.statusCode ?? 0, String(decoding: data, as: UTF8.self), h?.value(forHTTPHeaderField: "Content-Type") ?? "")
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
            _ = try ledger.appendAndWait((from..<from + n).map { i in
                try Entry.prepare(json: Array(event(org: "org_a", i: i).utf8), receivedAt: 1_767_225_600_000 + Int64(i), writer: Writer(uid: 0, gid: 0, via: "test"))
            })
            try ledger.checkpointNow()
            return try #require(ledger.latestCheckpoint)
        }
        let key = d.root + "/witness.key", state = d.root + "/witness-state"
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
        let proof = try ledger.consistencyProof(old: 12, new: 21).map { Data($0.bytes).base64EncodedString() + "\n" }.joined()
        let (s3, line3, _) = try await post(w.url, "old 12\n" + proof + "\n" + c2.note)
        #expect(s3 == 200, "\(line3)")
        #expect(try verifier.cosignature(in: c2.note + line3) != nil)
    }
}
