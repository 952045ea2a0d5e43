import Archive
import AuditBase
import AuditEntries
import ChainIndex
import Foundation
import LogProofs
import SegmentStore
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 21 through the binaries, against the Ceph gateway: the machine is lost (kill -9 and
/// its data directory deleted) while writers stream; `auditctl recover` rebuilds it from the
/// bucket alone; the restarted daemon continues the same log, and a witness that cosigned
/// before the loss cosigns after it (consistency, not a fork).
@Suite(.serialized) struct MachineLossTests {
    /// Writers streaming keyed entries through `auditctl append`, their acks collected.
    final class Writers: @unchecked Sendable {
        var procs: [(ChildProcess, DaemonCrashTests.Output)] = []

        init(_ d: Daemon, count: Int, perWriter: Int, round: Int) throws {
            for w in 0..<count {
                let p = ChildProcess()
                p.executableURL = URL(fileURLWithPath: Daemon.product("auditctl"))
                p.arguments = ["append", "--socket", d.socket, "--batch", "20"]
                let inp = Pipe()
                let out = Pipe()
                p.standardInput = inp
                p.standardOutput = out
                p.standardError = FileHandle(forWritingAtPath: "/dev/null")
                try p.run()
                let o = DaemonCrashTests.Output()
                Thread {
                    while true {
                        let x = out.fileHandleForReading.availableData
                        if x.isEmpty { break }
                        o.add(x)
                    }
                }.start()
                var lines = ""
                for i in 0..<perWriter { lines += event(org: "org_\(i % 4)", i: i, key: "r\(round)-w\(w)-\(i)") + "\n" }
                let data = Data(lines.utf8)
                Thread {
                    // The writer is killed with the machine: a broken pipe ends the feed.
                    try? inp.fileHandleForWriting.write(contentsOf: data)
                    try? inp.fileHandleForWriting.close()
                }.start()
                procs.append((p, o))
            }
        }

        /// Whether a writer has printed an acknowledgement yet.
        var anyAck: Bool {
            procs.contains { p in p.1.lock.withLock { p.1.text.contains("\"seq\":") } }
        }

        /// Stops them and returns every acknowledged key with its sequence number.
        func acked(round: Int) throws -> [String: UInt64] {
            for (p, _) in procs {
                if p.isRunning { kill(p.processIdentifier, SIGKILL) }
                p.waitUntilExit()
            }
            usleep(50_000)
            var out: [String: UInt64] = [:]
            for (w, (_, o)) in procs.enumerated() {
                for line in o.lock.withLock({ o.text }).split(separator: "\n") {
                    guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                        let ln = obj["line"] as? Int, let seq = obj["seq"] as? Int
                    else { continue }
                    out["r\(round)-w\(w)-\(ln - 1)"] = UInt64(seq)
                }
            }
            return out
        }
    }

    /// A steady writer: one `auditctl append` of `chunk` keyed entries after another, until
    /// one fails (the machine is gone). Its acks, by key.
    final class PacedWriter: @unchecked Sendable {
        let lock = NSLock()
        var acked: [String: UInt64] = [:]
        let done = DispatchSemaphore(value: 0)

        init(_ d: Daemon, name: String, chunk: Int) {
            Thread { [self] in
                var k = 0
                while true {
                    var lines = ""
                    for i in 0..<chunk {
                        lines += event(org: "org_\(i % 4)", i: k * chunk + i, key: "\(name)-\(k * chunk + i)") + "\n"
                    }
                    guard let (s, out, _) = try? d.ctl(["append", "--socket", d.socket], stdin: lines) else { break }
                    for line in out.split(separator: "\n") {
                        guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                            let ln = obj["line"] as? Int, let seq = obj["seq"] as? Int
                        else { continue }
                        lock.withLock { acked["\(name)-\(k * chunk + ln - 1)"] = UInt64(seq) }
                    }
                    if s != 0 { break }
                    k += 1
                }
                done.signal()
            }.start()
        }
    }

    /// Every key of the log in `data`, with the sequence numbers that hold it.
    static func keys(_ data: String) throws -> [String: [UInt64]] {
        let store = try Ledger.segmentStore(data, retired: ArchiveTier(), readOnly: true)
        var at: [String: [UInt64]] = [:]
        try store.scan { r in
            let p = try RecordPayload(bytes: r.payload)
            if let k = CanonicalScan.topLevelString(p.content, key: "idempotency_key") {
                at[k, default: []].append(r.seq)
            }
            return true
        }
        return at
    }

    /// The tree size of a checkpoint note (its second line).
    static func size(_ note: Data) -> Int {
        Int(String(decoding: note, as: UTF8.self).split(separator: "\n").dropFirst().first ?? "") ?? 0
    }

    @Test func machineLossInReplicatedModeLosesNoAcknowledgedEntryAndTheWitnessSeesNoFork() async throws {
        signal(SIGPIPE, SIG_IGN)
        let (env, bucket) = try S3ArchiveDaemonTests.store()
        let rounds = Int(ProcessInfo.processInfo.environment["AUDITLOG_LOSS_ROUNDS"] ?? "") ?? 20
        var lossPoints: [String] = []
        for round in 0..<rounds {
            let url = "s3://\(bucket)/loss\(round)"
            let t0 = ContinuousClock.now
            var phases: [String] = []
            func mark(_ what: String) { phases.append("\(what) \(ContinuousClock.now - t0)") }
            let d = Daemon("loss\(round)", args: [])
            d.environment = env
            defer { d.cleanup() }
            let (witness, vkey, _) = try WitnessServeTests.witnessedLog(d, name: "w\(round)")
            defer { witness.kill9() }
            d.extraArgs = [
                "--archive", url, "--ack", "replicated", "--segment-bytes", "120000", "--tail-interval-ms", "200",
                "--witness", "\(witness.url) \(vkey)", "--witness-interval", "1",
            ]
            try d.start()
            mark("started")
            let writers = try Writers(d, count: 2, perWriter: 4000, round: round)
            // The first acknowledgement, then a random moment: a seal, a tail upload or a
            // checkpoint is in progress at most of them. (A fixed shortest wait of 0.3 s let a
            // round on a loaded machine end before any acknowledgement, with nothing to check.)
            let firstAck = try await eventually(seconds: 60) { writers.anyAck ? true : nil }
            #expect(firstAck != nil, "round \(round): no writer got an acknowledgement within 60 s")
            guard firstAck != nil else {
                _ = try writers.acked(round: round)
                break
            }
            let wait = UInt32.random(in: 0...2_200_000)
            usleep(wait)
            let token = try d.token(org: nil)
            let (bs, beforeNote) = try await d.http("/v1/checkpoint", token: token)
            d.kill9()
            let acked = try writers.acked(round: round)
            #expect(!acked.isEmpty, "round \(round): writers got acks before the loss")
            // The machine is gone: its data directory with it (the key is kept elsewhere).
            try FileManager.default.removeItem(atPath: d.data)
            mark("killed")
            let (rs, rout, rerr) = try d.ctl(["recover", d.data, "--archive", url])
            mark("recovered")
            #expect(rs == 0, "round \(round): recover failed: \(rout)\(rerr)")
            guard rs == 0 else { break }
            let keys = try Self.keys(d.data)
            for (k, seq) in acked {
                #expect(keys[k] == [seq], "round \(round): key \(k) acked at \(seq), recovered at \(keys[k] ?? [])")
            }
            #expect(keys.values.allSatisfy { $0.count == 1 }, "round \(round): an entry stored twice")
            let recovered = keys.count
            // The log holds more than the writers' entries (the token's own, the witness's setup):
            // what a published checkpoint must not exceed is the recovered log's size.
            let logSize = try #require(
                rout.range(of: "recovered ").flatMap { Int(rout[$0.upperBound...].prefix { $0.isNumber }) },
                "round \(round): recover did not say how many entries: \(rout)")
            lossPoints.append(
                "round \(round) (killed after \(wait / 1000) ms): \(acked.count) acked, \(recovered) recovered")
            // The same log continues: the witness, which cosigned before the loss, cosigns after it.
            try d.start()
            let more = event(org: "org_x", i: 0, key: "after-\(round)")
            #expect(try d.ctl(["append", "--socket", d.socket], stdin: more + "\n").0 == 0)
            // The witness cosigned before the loss (a published checkpoint); it must cosign one of
            // the continued log, which it does only with a consistency proof from its own.
            var size = 0
            for _ in 0..<150 {
                let (cs, cnote) = try await d.http("/v1/checkpoint/cosigned", token: try d.token(org: nil))
                if cs == 200 { size = Self.size(cnote) }
                if size > logSize { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(size > logSize, "round \(round): the witness cosigned the continued log (size \(size))")
            mark("cosigned")
            if bs == 200 {
                let oldSize = Self.size(beforeNote)
                #expect(
                    oldSize <= logSize,
                    "round \(round): a published checkpoint (\(oldSize)) exceeds the \(logSize) entries recovered")
            }
            #expect(d.stop() == 0)
            let (vs, vout, _) = try d.ctl(["verify", d.data, "--quiet"])
            #expect(vs == 0, "round \(round): \(vout)")
            mark("verified")
            lossPoints[lossPoints.count - 1] += "; " + phases.joined(separator: ", ")
        }
        print("machine loss, replicated mode:\n" + lossPoints.joined(separator: "\n"))
    }

    @Test func machineLossInLocalModeLosesAtMostTheTailInterval() async throws {
        signal(SIGPIPE, SIG_IGN)
        let (env, bucket) = try S3ArchiveDaemonTests.store()
        let interval = 500
        var points: [String] = []
        var worst = 0.0
        for round in 0..<5 {
            let url = "s3://\(bucket)/local\(round)"
            let d = Daemon(
                "local\(round)",
                args: ["--archive", url, "--segment-bytes", "2000000", "--tail-interval-ms", String(interval)])
            d.environment = env
            defer { d.cleanup() }
            try d.start()
            // Replication is under way (the store answers) before the writers start.
            #expect(try d.ctl(["append", "--socket", d.socket], stdin: event(org: "org_w", i: 0) + "\n").0 == 0)
            for _ in 0..<100 {
                let r = try await d.json("/healthz", token: nil)["replication"] as? [String: Any]
                if (r?["replicated_end"] as? Int ?? 0) >= 1 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            // A steady load (two writers, a few thousand entries a second) rather than a flood:
            // the promise is about the tail thread's pace, not about a CPU the writers starve.
            let paced = [
                PacedWriter(d, name: "r\(round)-a", chunk: 200), PacedWriter(d, name: "r\(round)-b", chunk: 200),
            ]
            // The first acknowledgement, then a random moment.
            let firstAck = try await eventually(seconds: 60) {
                paced.contains { w in w.lock.withLock { !w.acked.isEmpty } } ? true : nil
            }
            #expect(firstAck != nil, "round \(round): no writer got an acknowledgement within 60 s")
            usleep(UInt32.random(in: 1_000_000...2_800_000))
            d.kill9()
            let killedAt = Date()
            for w in paced { w.done.wait() }
            var acked: [String: UInt64] = [:]
            for w in paced { w.lock.withLock { acked.merge(w.acked) { a, _ in a } } }
            #expect(!acked.isEmpty, "round \(round): writers got acks before the loss")
            // The machine is lost; its disk is kept aside only to date what the bucket lacked.
            try FileManager.default.moveItem(atPath: d.data, toPath: d.root + "/lost-disk")
            let (rs, rout, rerr) = try d.ctl(["recover", d.data, "--archive", url])
            #expect(rs == 0, "round \(round): \(rout)\(rerr)")
            guard rs == 0 else { break }
            let keys = try Self.keys(d.data)
            // What came back is exactly what was acknowledged, up to a point: no entry is
            // altered or stored twice, and what is missing is the newest acknowledged ones.
            #expect(keys.values.allSatisfy { $0.count == 1 })
            var lost = 0
            var newestKept: UInt64 = 0
            for (k, seq) in acked {
                if let at = keys[k] {
                    #expect(at == [seq], "round \(round): key \(k) acked at \(seq), recovered at \(at)")
                    newestKept = max(newestKept, seq)
                } else {
                    lost += 1
                }
            }
            let missingBelow = acked.values.filter { $0 < newestKept && !keys.values.contains([$0]) }.count
            #expect(missingBelow == 0, "round \(round): only the newest acknowledged entries may be missing")
            // The recovery point in seconds: how long the oldest acknowledged entry the bucket
            // lacked had been durable when the machine was lost (its received_at, from the lost disk).
            let kept = try Ledger.segmentStore(d.data, retired: ArchiveTier(), readOnly: true).endSeq
            var seconds = 0.0
            if lost > 0 {
                let disk = try Ledger.segmentStore(d.root + "/lost-disk", retired: ArchiveTier(), readOnly: true)
                let first = try RecordPayload(bytes: try disk.read(seq: kept).payload)
                let receivedAt = Entry.indexFields(ofStored: first.content)?.fields.time ?? 0
                seconds = killedAt.timeIntervalSince1970 - Double(receivedAt) / 1000
            }
            worst = max(worst, seconds)
            points.append(
                "round \(round): \(acked.count) acked, \(lost) lost (recovery point \(lost) entries, \(String(format: "%.2f", seconds)) s)"
            )
        }
        // The promise: the bucket follows within the tail interval (plus one upload).
        #expect(
            worst <= Double(interval) / 1000 + 1.0, "recovery point \(worst) s, promised \(interval) ms + one upload")
        print(
            "machine loss, local mode (tail interval \(interval) ms; bound \(interval) ms + one upload):\n"
                + points.joined(separator: "\n"))
    }
}
