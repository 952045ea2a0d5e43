import AuditBase
import ChainIndex
import Foundation
import LogProofs
import SegmentStore
import TestSupport
import Testing
import Verification

#if canImport(Glibc)
import Glibc
#endif

/// Real crashes: a child process appending is killed with SIGKILL at random moments.
@Suite struct CrashTests {
    final class Collector: @unchecked Sendable {
        let lock = NSLock()
        var text = ""
        func add(_ d: Data) { lock.withLock { text += String(decoding: d, as: UTF8.self) } }
    }

    @Test func killNineAtRandomMomentsLosesNoAcknowledgedEntry() throws {
        signal(SIGPIPE, SIG_IGN)
        let dir = temporaryDirectory("crash") + "/data"
        let key = temporaryDirectory("crash-key") + "/signing.key"
        var acked: [UInt64: String] = [:]
        var sent = 0
        var rng = SystemRandomNumberGenerator()
        for round in 0..<14 {
            let p = ChildProcess()
            p.executableURL = URL(fileURLWithPath: builtProduct("auditctl"))
            // Small segments: some kills land while a segment is being sealed.
            p.arguments = [
                "import", dir, "--key", key, "--receipts", "--quiet", "--batch", "50", "--segment-bytes", "60000",
            ]
            let inp = Pipe()
            let out = Pipe()
            p.standardInput = inp
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let collector = Collector()
            let reader = Thread {
                while true {
                    let d = out.fileHandleForReading.availableData
                    if d.isEmpty { break }
                    collector.add(d)
                }
            }
            reader.start()
            // The feeder writes to the pipe's descriptor number until a write fails (the child
            // is gone). That number must not be closed while the feeder may still use it: the
            // next file this process opens (any test's, in parallel) takes the number, and the
            // feeder's next write would land at offset 0 of that file. This is what once broke
            // an open segment of CrashStateTests (issue 19 item 1).
            let fd = inp.fileHandleForWriting.fileDescriptor
            let start = sent
            let feeder = Thread {
                var i = start
                while true {
                    let chunk = Array(events(25, from: i).utf8)
                    let ok = chunk.withUnsafeBytes { b -> Bool in
                        var done = 0
                        while done < b.count {
                            let n = write(fd, b.baseAddress! + done, b.count - done)
                            if n <= 0 { return false }
                            done += n
                        }
                        return true
                    }
                    if !ok { return }
                    i += 25
                }
            }
            feeder.start()
            usleep(UInt32.random(in: 150_000...700_000, using: &rng))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            #expect(
                p.terminationReason == .uncaughtSignal,
                "round \(round): the child should have been killed, not have exited")
            // The child is dead, so the feeder's next write fails (EPIPE: nobody else holds the
            // read end) and it returns; only then is the descriptor closed.
            let joinBy = Date().addingTimeInterval(30)
            while !feeder.isFinished && Date() < joinBy { usleep(1_000) }
            guard feeder.isFinished else {
                Issue.record(
                    "round \(round): the feeder thread is still writing 30 s after the child died; its pipe is left open rather than closed under it"
                )
                return
            }
            try? inp.fileHandleForWriting.close()
            while !reader.isFinished { usleep(10_000) }
            // Only whole receipt lines count: a line cut by the kill was never fully acknowledged.
            for line in collector.text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                guard let d = line.data(using: .utf8),
                    let o = try JSONSerialization.jsonObject(with: d) as? [String: Any],
                    let seq = o["seq"] as? Int, let hash = o["hash"] as? String
                else {
                    Issue.record("round \(round): unreadable receipt line \(line)")
                    continue
                }
                acked[UInt64(seq)] = hash
            }
            sent += 100_000

            // Reopen: every acknowledged entry is there, with the hash it was acknowledged with.
            var o = LedgerOptions()
            o.background = false
            let l = try Ledger(directory: dir, signer: try KeyFile.load(path: key), options: o)
            #expect(l.size >= UInt64(acked.count))
            // Every receipt against the stored leaf hash (the final verification ties each leaf
            // to its entry's bytes), and a sample read back whole.
            for (seq, hash) in acked {
                #expect(try seq < l.size && l.tree.leaf(seq).hex == hash, "round \(round): entry \(seq)")
            }
            for seq in Array(acked.keys).shuffled().prefix(40) + [acked.keys.max() ?? 0] where !acked.isEmpty {
                #expect(try l.entry(seq: seq).hash.hex == acked[seq], "round \(round): entry \(seq)")
            }
            try l.close()
        }
        #expect(acked.count > 1000, "the child should have acknowledged entries (\(acked.count))")
        #expect(Set(acked.keys).count == acked.count)
        let report = try Verifier(directory: dir).run()
        #expect(report.ok, "\(report.failure?.description ?? "")")
        #expect(report.entries >= UInt64(acked.count))
        // Sealing happened under the kills, and nothing half-sealed was left behind.
        let segs = try FileManager.default.contentsOfDirectory(atPath: DataDirectory(dir).segments)
        #expect(segs.contains { $0.hasSuffix(".seg") })
        #expect(!segs.contains { $0.hasSuffix(".tmp") })
    }
}
