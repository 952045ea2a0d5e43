import Archive
import AuditBase
import AuditEntries
import ChainIndex
import Foundation
import SegmentStore
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real crashes of the real daemon while several writer processes stream.
@Suite(.serialized) struct DaemonCrashTests {
    final class Output: @unchecked Sendable {
        let lock = NSLock()
        var text = ""
        func add(_ d: Data) { lock.withLock { text += String(decoding: d, as: UTF8.self) } }
    }

    @Test func killNineWhileWritersStreamLosesNothingAndStoresEachEntryOnce() throws {
        signal(SIGPIPE, SIG_IGN)
        let d = Daemon("crash", args: ["--segment-bytes", "200000"])
        defer { d.cleanup() }
        try d.start()
        let writers = 3
        let perWriter = 3000
        var procs: [(ChildProcess, Output)] = []
        for w in 0..<writers {
            let p = ChildProcess()
            p.executableURL = URL(fileURLWithPath: Daemon.product("auditctl"))
            p.arguments = ["append", "--socket", d.socket, "--retry", "60", "--batch", "50"]
            let inp = Pipe()
            let out = Pipe()
            p.standardInput = inp
            p.standardOutput = out
            p.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try p.run()
            let o = Output()
            Thread {
                while true {
                    let x = out.fileHandleForReading.availableData
                    if x.isEmpty { break }
                    o.add(x)
                }
            }.start()
            var lines = ""
            for i in 0..<perWriter { lines += event(org: "org_\(i % 4)", i: i, key: "w\(w)-\(i)") + "\n" }
            let data = Data(lines.utf8)
            Thread {
                inp.fileHandleForWriting.write(data)
                try? inp.fileHandleForWriting.close()
            }.start()
            procs.append((p, o))
        }
        // Three crashes while they write.
        for _ in 0..<3 {
            usleep(UInt32.random(in: 300_000...900_000))
            d.kill9()
            usleep(100_000)
            try d.start()
        }
        for (p, _) in procs { p.waitUntilExit() }
        for (p, _) in procs { #expect(p.terminationStatus == 0) }
        #expect(d.stop() == 0)

        // Every acknowledged line maps to one seq; the log holds each key exactly once.
        var ackedSeq: [String: UInt64] = [:]
        for (w, (_, o)) in procs.enumerated() {
            for line in o.text.split(separator: "\n") {
                guard let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let ln = obj["line"] as? Int, let seq = obj["seq"] as? Int
                else { continue }
                let key = "w\(w)-\(ln - 1)"
                if let prev = ackedSeq[key] { #expect(prev == UInt64(seq), "key \(key) acknowledged with two seqs") }
                ackedSeq[key] = UInt64(seq)
            }
        }
        #expect(ackedSeq.count == writers * perWriter, "every entry acknowledged (\(ackedSeq.count))")
        let store = try Ledger.segmentStore(d.data, retired: ArchiveTier(), readOnly: true)
        var keyAt: [String: [UInt64]] = [:]
        try store.scan { r in
            let p = try RecordPayload(bytes: r.payload)
            if let k = CanonicalScan.topLevelString(p.content, key: "idempotency_key") {
                keyAt[k, default: []].append(r.seq)
            }
            return true
        }
        for (k, seq) in ackedSeq {
            #expect(keyAt[k] == [seq], "key \(k): acked at \(seq), stored at \(keyAt[k] ?? [])")
        }
        #expect(keyAt.values.allSatisfy { $0.count == 1 })
        let (vs, vout, _) = try d.ctl(["verify", d.data, "--quiet"])
        #expect(vs == 0, "\(vout)")
    }
}

@Suite(.serialized) struct LiveVerifyTests {
    @Test func verifyingBesideABusyDaemonReportsNoFalseFailures() throws {
        let d = Daemon("liveverify", args: ["--segment-bytes", "100000"])
        defer { d.cleanup() }
        try d.start()
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: Daemon.product("auditctl"))
        p.arguments = ["append", "--socket", d.socket, "--batch", "20"]
        let inp = Pipe()
        p.standardInput = inp
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        var lines = ""
        for i in 0..<6000 {
            lines += event(org: "org_\(i % 5)", i: i, extra: #","pad":"\#(String(repeating: "z", count: 100))""#) + "\n"
        }
        let data = Data(lines.utf8)
        Thread {
            inp.fileHandleForWriting.write(data)
            try? inp.fileHandleForWriting.close()
        }.start()
        var runs = 0
        while p.isRunning && runs < 20 {
            let (s, out, err) = try d.ctl(["verify", d.data, "--quiet"])
            #expect(s == 0, "verify beside a live daemon: \(out) \(err)")
            runs += 1
        }
        p.waitUntilExit()
        #expect(runs >= 1)
        #expect(d.stop() == 0)
        let (s, out, _) = try d.ctl(["verify", d.data, "--quiet"])
        #expect(s == 0 && out.contains("OK: 6000 entries"), "\(out)")
    }
}
