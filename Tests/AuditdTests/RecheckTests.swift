import AuditBase
import Foundation
import SegmentStore
import TestSupport
import Testing

@testable import AuditEntries
@testable import AuditIndex
@testable import ChainIndex

/// Issue 7 E16: the running daemon rechecks what it already verified, on a schedule.
@Suite(.serialized) struct RecheckTests {
    func append(_ d: Daemon, _ n: Int, from: Int = 0) throws {
        let input =
            (from..<from + n).map {
                event(org: "org_\($0 % 3)", i: $0, extra: #","pad":"\#(String(repeating: "p", count: 200))""#)
            }.joined(separator: "\n") + "\n"
        let (s, _, err) = try d.ctl(["append", "--socket", d.socket], stdin: input)
        guard s == 0 else { throw DaemonFailed(message: err) }
    }

    func health(_ d: Daemon) async throws -> (Int, [String: Any]) {
        let (s, body) = try await d.http("/healthz", token: nil)
        return (s, (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:])
    }

    func metric(_ d: Daemon, _ name: String) async throws -> Double? {
        let (_, body) = try await d.http("/metrics", token: nil)
        for line in String(decoding: body, as: UTF8.self).split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    @Test func aByteFlippedInAnOldSealedSegmentIsFoundWhileRunning() async throws {
        let d = Daemon(
            "recheck", args: ["--segment-bytes", "4096", "--recheck-interval", "1", "--verify-interval", "1"])
        defer { d.cleanup() }
        try d.start()
        try append(d, 120)
        // Wait until the first verification has seen the sealed segments.
        var deadline = Date().addingTimeInterval(30)
        while Date() < deadline, (try await health(d).1["verified_entries"] as? Int ?? 0) < 60 {
            try await Task.sleep(for: .milliseconds(200))
        }
        let segDir = DataDirectory(d.data).segments
        let first = try #require(
            try FileManager.default.contentsOfDirectory(atPath: segDir).filter { $0.hasSuffix(".seg") }.sorted().first)
        let seg = try SealedSegment(path: segDir + "/" + first)
        let block = try #require(seg.footer.blocks.first)
        #expect(try await health(d).0 == 200)
        try flipByte(segDir + "/" + first, at: Int(block.offset) + SegmentFormat.blockHeaderSize + 7)
        deadline = Date().addingTimeInterval(30)
        var status = 200
        while Date() < deadline, status == 200 {
            try await Task.sleep(for: .milliseconds(250))
            status = try await health(d).0
        }
        #expect(status == 503, "the flipped byte was not found by the running daemon")
        let (_, h) = try await health(d)
        #expect((h["verification"] as? String)?.contains(first) == true, "\(h)")
        #expect(try await metric(d, "auditd_verification_failures_total") ?? 0 >= 1)
        d.kill9()
    }

    /// Derived files rewritten with valid checksums while the daemon runs: an org-state
    /// snapshot that miscounts an org, an index row that hides an entry from a filter.
    @Test func aRewrittenOrgStateOrIndexRowIsFoundWhileRunning() async throws {
        for target in ["orgstate", "index"] {
            let d = Daemon(
                "recheck-\(target)",
                args: ["--segment-bytes", "4096", "--recheck-interval", "1", "--verify-interval", "1"])
            defer { d.cleanup() }
            try d.start()
            try append(d, 120)
            var deadline = Date().addingTimeInterval(30)
            while Date() < deadline, (try await health(d).1["verified_entries"] as? Int ?? 0) < 60 {
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(try await health(d).0 == 200)
            let index = DataDirectory(d.data).index + "/"
            if target == "orgstate" {
                let snap = try #require(try Ledger.checkedOrgState(DataDirectory(d.data).orgState))
                var orgs = snap.orgs
                let org = try #require(orgs.keys.sorted().first)
                orgs[org] = OrgMark(count: (orgs[org]?.count ?? 0) + 1, lastSeq: orgs[org]?.lastSeq ?? 0)
                try Ledger.saveOrgState(DataDirectory(d.data).orgState, end: snap.end, orgs: orgs)
            } else {
                let name = try #require(
                    try FileManager.default.contentsOfDirectory(atPath: index).filter { $0.hasSuffix(".idx") }.sorted()
                        .first)
                let idx = try SealedIndex(path: index + name)
                var byOrg = try idx.dir.keys.sorted().map { ($0, try idx.hits(org: $0)) }
                byOrg[0].1[0].fields.outcome = byOrg[0].1[0].fields.outcome == .denied ? .success : .denied
                _ = chmod(index + name, 0o644)
                try FileManager.default.removeItem(atPath: index + name)
                try SealedIndex.write(
                    path: index + name, segment: idx.segment, firstSeq: idx.firstSeq, endSeq: idx.endSeq, byOrg: byOrg)
            }
            deadline = Date().addingTimeInterval(30)
            var status = 200
            while Date() < deadline, status == 200 {
                try await Task.sleep(for: .milliseconds(250))
                status = try await health(d).0
            }
            let (_, h) = try await health(d)
            #expect(status == 503, "\(target): the rewrite was not found by the running daemon: \(h)")
            // A rewritten index file is found by whichever check reads it first: the entries'
            // rows against it, or the org's posting list (its record of the section) against it.
            let said = h["verification"] as? String ?? ""
            let named =
                target == "orgstate"
                ? said.contains("org-state")
                : said.contains("index row") || (said.contains("posting list") && said.contains("index file"))
            #expect(named, "\(target): \(h)")
            d.kill9()
        }
    }

    /// A verification pass in progress (the first one after a start covers the whole log) stops
    /// between steps when the daemon is told to stop: on a log of ten million entries the stop
    /// waited for the whole pass, 24 s. Nothing is reported failed, and the next start verifies.
    @Test func aVerificationPassInProgressDoesNotHoldUpTheShutdown() async throws {
        let d = Daemon("verify-stop", args: ["--segment-bytes", "4096"])
        defer { d.cleanup() }
        // Each step of a pass then takes three seconds, whatever the stop says.
        d.environment = ["AUDITLOG_TEST_PAUSE_VERIFY_STEP": "3"]
        try d.start()
        for part in 0..<4 {
            let input =
                (part * 50..<part * 50 + 50).map {
                    event(org: "org_\($0 % 3)", i: $0, extra: #","pad":"\#(String(repeating: "p", count: 200))""#)
                }.joined(separator: "\n") + "\n"
            let (s, _, err) = try await d.ctlOffPool(["append", "--socket", d.socket], stdin: input)
            #expect(s == 0, "\(err)")
        }
        // The pass over the new segments has made its first step and is in its pause (however
        // the entries fell into segments, a step follows: the end of a segment is one).
        let deadline = Date().addingTimeInterval(30)
        var verified = 0
        while Date() < deadline, verified == 0 {
            try await Task.sleep(for: .milliseconds(100))
            verified = try await health(d).1["verified_entries"] as? Int ?? 0
        }
        #expect(verified > 0, "the pass did not begin")
        let (status, took) = await d.stopOffPool()
        #expect(status == 0, "\(d.logTail())")
        // The step under way ends (three seconds at most), the rest of the pass does not run.
        #expect(took < 5, "the stop waited \(took) s for the verification pass")
        // Nothing was judged from the stopped pass: the next start verifies everything, healthy.
        d.environment = [:]
        try d.start()
        var h: (Int, [String: Any]) = (0, [:])
        let again = Date().addingTimeInterval(30)
        while Date() < again {
            h = try await health(d)
            if h.1["verified_entries"] as? Int ?? 0 >= 200 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(h.0 == 200 && h.1["verified_entries"] as? Int ?? 0 >= 200, "\(h.1)")
        d.kill9()
    }

    /// Rechecks run while the archiver moves segments away: never a false failure.
    @Test func rechecksBesideTheArchiverReportNoFalseFailures() async throws {
        let d = Daemon(
            "recheck-archive",
            args: [
                "--segment-bytes", "4096", "--recheck-interval", "1", "--verify-interval", "1",
                "--hot-window", "0", "--archive-interval", "1",
            ])
        defer { d.cleanup() }
        try d.start()
        for round in 0..<8 {
            try append(d, 40, from: round * 40)
            try await Task.sleep(for: .milliseconds(400))
            let (s, h) = try await health(d)
            #expect(s == 200, "round \(round): \(h)")
        }
        try await Task.sleep(for: .seconds(2))
        #expect(try await health(d).0 == 200)
        #expect(try await metric(d, "auditd_recheck_passes_total") ?? 0 >= 1)
        #expect(try await metric(d, "auditd_verification_failures_total") ?? 0 == 0)
        let archived = try FileManager.default.contentsOfDirectory(atPath: DataDirectory(d.data).segments).filter {
            $0.hasSuffix(".archived")
        }
        #expect(!archived.isEmpty, "the archiver moved segments during the rechecks")
        #expect(d.stop() == 0)
    }
}
