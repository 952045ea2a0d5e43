import AuditBase
import Foundation
import LogProofs
import TestSupport
import Testing

@testable import TimeStamping

/// RFC 3161 against a real authority (`openssl ts -reply` on loopback), both ways: our requests
/// are answered by OpenSSL's TSA, and its tokens checked by us and by `openssl ts -verify`.
@Suite struct TimeStampTokenTests {
    static func temp(_ name: String) -> String {
        let d = NSTemporaryDirectory() + "tst-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func openssl(_ args: [String], cwd: String) throws -> (Int32, String) {
        let out = cwd + "/openssl.out"
        FileManager.default.createFile(atPath: out, contents: nil)
        let h = try #require(FileHandle(forWritingAtPath: out))
        defer { try? h.close() }
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = h
        p.standardError = h
        try p.run()
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    /// Runs `body` on a thread of its own: processes are waited for off the cooperative pool.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in
            Thread.detachNewThread { c.resume(with: Result { try body() }) }
        }
    }

    static func ask(_ tsa: TimeStampAuthority, _ query: [UInt8]) async throws -> [UInt8] {
        let (status, body) = try await BoundedPost.post(
            try #require(URL(string: tsa.url)), body: Data(query), contentType: "application/timestamp-query",
            limit: 1 << 16, deadline: .seconds(20))
        #expect(status == 200)
        return Array(body)
    }

    @Test func aCheckpointIsStampedByOpenSSLsAuthorityAndBothSidesCheckTheToken() async throws {
        let dir = Self.temp("ok")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tsa = try await Self.offPool { try TimeStampAuthority(dir: dir + "/tsa") }
        defer { tsa.stop() }
        let cp = Checkpoint(origin: "example.com/log", size: 42, root: SHA256.hash(Array("root".utf8)))
        let digest = TimeStampImprint.digest(cp)
        let nonce = try SecureRandom.bytes(TimeStampRequest.nonceSize)
        let query = try #require(TimeStampRequest.der(digest: digest, nonce: nonce))
        // OpenSSL reads our request as we meant it.
        try Data(query).write(to: URL(fileURLWithPath: dir + "/q.tsq"))
        let (qs, qtext) = try await Self.offPool {
            try Self.openssl(["ts", "-query", "-in", "q.tsq", "-text"], cwd: dir)
        }
        #expect(qs == 0, "\(qtext)")
        #expect(qtext.contains("Hash Algorithm: sha256"))
        #expect(qtext.contains("Certificate required: yes"))

        // The token's genTime falls within the exchange (the TSA states it to the second).
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let token = try TimeStampToken.fromResponse(try await Self.ask(tsa, query))
        let after = Int64(Date().timeIntervalSince1970 * 1000)
        let trust = try TimeStampTrust(file: tsa.caFile)
        let t = try TimeStampToken.verify(token, digest: digest, trust: trust, nonce: nonce)
        #expect(
            t.time >= before - 2000 && t.time <= after + 2000, "genTime \(t.time) is not within \(before)...\(after)")
        #expect(t.signer.contains("auditlog test TSA"), "\(t.signer)")
        #expect(!t.serial.isEmpty)
        // Its own signing certificate is trusted as well as its CA.
        _ = try TimeStampToken.verify(token, digest: digest, trust: try TimeStampTrust(file: tsa.certFile))

        // `openssl ts -verify` checks our stored token over the checkpoint body, with no tool of ours.
        try Data(TimeStampImprint.data(cp)).write(to: URL(fileURLWithPath: dir + "/body.txt"))
        try Data(token).write(to: URL(fileURLWithPath: dir + "/token.der"))
        let (vs, vtext) = try await Self.offPool {
            try Self.openssl(
                ["ts", "-verify", "-data", "body.txt", "-in", "token.der", "-token_in", "-CAfile", tsa.caFile], cwd: dir
            )
        }
        #expect(vs == 0 && vtext.contains("Verification: OK"), "\(vtext)")
    }

    @Test func aTokenForOtherDataAnotherAuthorityOrEditedBytesIsRefused() async throws {
        let dir = Self.temp("bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tsa = try await Self.offPool { try TimeStampAuthority(dir: dir + "/tsa") }
        defer { tsa.stop() }
        let other = try await Self.offPool { try TimeStampAuthority(dir: dir + "/other") }
        other.stop()
        let digest = SHA256.hash(Array("checkpoint".utf8)).bytes
        let nonce = try SecureRandom.bytes(8)
        let token = try TimeStampToken.fromResponse(
            try await Self.ask(tsa, try #require(TimeStampRequest.der(digest: digest, nonce: nonce))))
        let trust = try TimeStampTrust(file: tsa.caFile)
        #expect(throws: TimeStampError.self) {
            try TimeStampToken.verify(token, digest: SHA256.hash(Array("other".utf8)).bytes, trust: trust)
        }
        #expect(throws: TimeStampError.self) {
            try TimeStampToken.verify(token, digest: digest, trust: try TimeStampTrust(file: other.caFile))
        }
        #expect(throws: TimeStampError.self) {
            try TimeStampToken.verify(token, digest: digest, trust: trust, nonce: [1, 2, 3, 4, 5, 6, 7, 8])
        }
        // The signed part: the imprint, the genTime (GeneralizedTime, tag 0x18) and the
        // signature at the end. (The certificates a token carries are not signed: a verifier
        // takes its anchors from the trust file, not from them.)
        let imprintAt = try #require(
            (0..<(token.count - 32)).first { Array(token[$0..<($0 + 32)]) == digest })
        let timeAt = try #require((0..<(token.count - 2)).first { token[$0] == 0x18 && token[$0 + 1] >= 15 })
        for at in [imprintAt, timeAt + 14, token.count - 20] {
            var bad = token
            bad[at] ^= 0x01
            #expect(throws: TimeStampError.self) { try TimeStampToken.verify(bad, digest: digest, trust: trust) }
        }
        #expect(throws: TimeStampError.self) {
            try TimeStampToken.verify([0x30, 0x03, 1, 2, 3], digest: digest, trust: trust)
        }
        #expect(throws: TimeStampError.self) { try TimeStampTrust(pem: Array("not a certificate".utf8), source: "x") }
    }

    @Test func anAuthorityThatRefusesSaysSo() async throws {
        let dir = Self.temp("refused")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tsa = try await Self.offPool { try TimeStampAuthority(dir: dir + "/tsa") }
        defer { tsa.stop() }
        // SHA-1 is not among the digests it accepts: a rejection, not a token.
        try Data("data".utf8).write(to: URL(fileURLWithPath: dir + "/d.txt"))
        let (s, text) = try await Self.offPool {
            try Self.openssl(["ts", "-query", "-data", "d.txt", "-sha1", "-out", "q.tsq"], cwd: dir)
        }
        #expect(s == 0, "\(text)")
        let query = try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/q.tsq")))
        let answer = try await Self.ask(tsa, query)
        #expect(throws: TimeStampError.self) { try TimeStampToken.fromResponse(answer) }
        do {
            _ = try TimeStampToken.fromResponse(answer)
        } catch {
            #expect(error.description.contains("refused the request"), "\(error)")
        }
        #expect(throws: TimeStampError.self) { try TimeStampToken.fromResponse(Array("<html>".utf8)) }
    }

    @Test func generalizedTimesParse() {
        #expect(
            TimeStampToken.parseGeneralizedTime(Array("20261205010243Z".utf8))
                == Timestamp.parse("2026-12-05T01:02:43.000Z"))
        #expect(
            TimeStampToken.parseGeneralizedTime(Array("20261205010243.44Z".utf8))
                == Timestamp.parse("2026-12-05T01:02:43.440Z"))
        #expect(
            TimeStampToken.parseGeneralizedTime(Array("20261205010243.123456Z".utf8))
                == Timestamp.parse("2026-12-05T01:02:43.123Z"))
        for bad in ["20261305010243Z", "2026120501024Z", "20261205010243", "20261205010243.Z", "2026120501024xZ"] {
            #expect(TimeStampToken.parseGeneralizedTime(Array(bad.utf8)) == nil, "\(bad)")
        }
    }
}
