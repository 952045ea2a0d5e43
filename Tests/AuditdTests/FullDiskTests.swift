import AuditBase
import AuditWire
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 7 A2 on the real daemon, with its data on a small tmpfs that fills up: nothing
/// acknowledged is lost, nothing is stored twice under one idempotency key, "not stored" is
/// only said of what is not stored, and freeing space lets the daemon go on.
@Suite(.serialized) struct FullDiskTests {
    func mountTmpfs(_ dir: String, size: String) throws {
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: "/bin/mount")
        p.arguments = ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", dir]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw DaemonFailed(
                message:
                    "this test needs to mount a tmpfs (run as root, as CI does): mount exited \(p.terminationStatus)")
        }
    }

    func unmount(_ dir: String) {
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: "/bin/umount")
        p.arguments = ["-l", dir]
        try? p.run()
        p.waitUntilExit()
    }

    @Test func aFullDiskLosesNothingAcknowledgedAndStoresNothingTwice() async throws {
        let d = Daemon("fulldisk", args: ["--segment-bytes", "65536"])
        defer { d.cleanup() }
        let mnt = d.root + "/data"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        try mountTmpfs(mnt, size: "3m")
        defer { unmount(mnt) }
        try d.start()
        // Leave the log about 300 KiB.
        let filler = mnt + "/filler"
        FileManager.default.createFile(atPath: filler, contents: Data(count: 2_600_000))
        var s = try RawSocket(path: d.socket)
        var acked: [UInt64: Ack] = [:]
        var refusals = 0
        var keyedStored = 0
        for i in 0..<6000 {
            // Every tenth entry is the same keyed entry, retried.
            let keyed = i % 10 == 0
            s.append(
                event(
                    org: keyed ? "org_0" : "org_\(i % 3)", i: keyed ? 7 : i, key: keyed ? "retry-me" : nil,
                    extra: #","pad":"\#(String(repeating: "f", count: 300))""#), id: UInt64(i))
            guard let f = s.next() else {
                Issue.record("connection closed at \(i)")
                break
            }
            if f.type == FrameType.ack.rawValue, let a = Ack(body: f.body) {
                acked[a.seq] = a
                if keyed && !a.duplicate { keyedStored += 1 }
            } else {
                refusals += 1
                if refusals > 20 { break }
            }
        }
        #expect(refusals > 0, "the disk never filled")
        #expect(keyedStored <= 1, "one keyed entry stored \(keyedStored) times")
        let (hs, _) = try await d.http("/healthz", token: nil)
        #expect(hs == 200 || hs == 503)
        // Free space: the daemon goes on.
        try FileManager.default.removeItem(atPath: filler)
        // (Under a full test run's load one entry's round trip took 85 ms here: a deadline, not
        // a count of tries.)
        var resumed = false
        var lastAnswer = "none"
        var reconnects = 0
        let deadline = Date().addingTimeInterval(60)
        var i = 0
        while !resumed && Date() < deadline {
            s.append(event(org: "org_x", i: 10_000 + i), id: UInt64(10_000 + i))
            i += 1
            guard let f = s.next() else {
                // No answer within 10 s, or the connection closed (the daemon closes one idle for
                // 300 s, and a starved test can be): a writer reconnects; it is said, not hidden.
                reconnects += 1
                lastAnswer = "no answer within 10 s or the connection closed (\(reconnects) times)"
                print("full disk: no answer while resuming; reconnecting (\(reconnects))")
                if reconnects > 3 { break }
                s = try RawSocket(path: d.socket)
                continue
            }
            if f.type == FrameType.ack.rawValue, let a = Ack(body: f.body) {
                acked[a.seq] = a
                resumed = true
            } else {
                lastAnswer = "\(f.type): \(String(decoding: f.body.dropFirst(2), as: UTF8.self))"
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        let health = String(decoding: try await d.http("/healthz", token: nil).1, as: UTF8.self)
        #expect(
            resumed,
            "appends did not resume within 60 s of freeing space (\(i) tries); the last answer: \(lastAnswer); /healthz: \(health); its log: \(d.logTail())"
        )
        #expect(try await d.http("/healthz", token: nil).0 == 200)
        #expect(d.stop() == 0)
        // Every acknowledged entry is there, with its hash; the log verifies.
        let (vs, vout, verr) = try d.ctl(["verify", d.data, "--quiet"])
        #expect(vs == 0, "\(vout) \(verr)")
        for (seq, a) in acked.sorted(by: { $0.key < $1.key }).suffix(25) {
            let (ss, out, _) = try d.ctl(["show", d.data, "--seq", String(seq)])
            #expect(ss == 0 && out.contains(a.hash.hex), "acknowledged entry \(seq)")
        }
    }
}
