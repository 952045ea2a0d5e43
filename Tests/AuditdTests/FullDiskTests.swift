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
        let s = try RawSocket(path: d.socket)
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
        var resumed = false
        for i in 0..<50 {
            s.append(event(org: "org_x", i: 10_000 + i), id: UInt64(10_000 + i))
            if let f = s.next(), f.type == FrameType.ack.rawValue, let a = Ack(body: f.body) {
                acked[a.seq] = a
                resumed = true
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(resumed, "appends resume once space is freed")
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
