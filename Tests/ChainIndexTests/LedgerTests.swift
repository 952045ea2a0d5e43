import AuditBase
import Foundation
import LogProofs
import SegmentStore
import Synchronization
import TestSupport
import Testing

@testable import AuditEntries
@testable import AuditIndex
@testable import ChainIndex

@Suite struct LedgerTests {
    @Test func appendReadAndProveAgainstSignedCheckpoints() throws {
        let dir = temporaryDirectory("ledger")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let signer = try Sample.signer()
        let l = try Ledger(directory: dir, signer: signer, options: Sample.options())
        let a = try l.appendAndWait((0..<30).map { try Sample.prepared(org: $0 % 3 == 0 ? "org_b" : "org_a", i: $0) })
        #expect(a.map(\.seq) == (0..<30).map { UInt64($0) })
        try l.checkpointNow()
        let cp1 = try #require(l.latestCheckpoint)
        #expect(cp1.checkpoint.size == 30)
        _ = try l.appendAndWait((30..<45).map { try Sample.prepared(org: "org_a", i: $0) })
        try l.checkpointNow()
        let cp2 = try #require(l.latestCheckpoint)
        // The checkpoint is a standard signed note any verifier accepts.
        #expect(try SignedCheckpoint(note: cp2.note, verifier: signer.verifier).checkpoint.size == 45)

        for seq in [0, 1, 17, 29] as [UInt64] {
            let e = try l.entry(seq: seq)
            #expect(e.hash == a[Int(seq)].hash)
            #expect(e.link.contentHash == SHA256.hash(e.content))
            #expect(
                Merkle.verifyInclusion(
                    index: seq, size: 30, leaf: e.hash, proof: try l.inclusionProof(seq: seq, size: 30),
                    root: cp1.checkpoint.root))
            #expect(
                Merkle.verifyInclusion(
                    index: seq, size: 45, leaf: e.hash, proof: try l.inclusionProof(seq: seq, size: 45),
                    root: cp2.checkpoint.root))
        }
        #expect(
            Merkle.verifyConsistency(
                old: 30, new: 45, oldRoot: cp1.checkpoint.root, newRoot: cp2.checkpoint.root,
                proof: try l.consistencyProof(old: 30, new: 45)))
        // Both chains: every entry links to the previous one, and to its org's previous one.
        var lastOfOrg: [String: StoredEntry] = [:]
        for seq in 0..<UInt64(45) {
            let e = try l.entry(seq: seq)
            #expect(e.link.prevHash == (seq == 0 ? .zero : try l.entry(seq: seq - 1).hash))
            #expect(e.link.prevOrgHash == (lastOfOrg[e.org]?.hash ?? .zero))
            #expect(e.link.orgSeq == (lastOfOrg[e.org].map { $0.link.orgSeq + 1 } ?? 0))
            lastOfOrg[e.org] = e
        }
        try l.close()
    }

    /// Writes outrunning the sealer (here there is none: no background threads): the commit
    /// thread first holds the next group a little for it, then, at the backlog's bound, seals a
    /// segment itself; each hold is reported (`onSealerWait`, the daemon's
    /// `auditd_sealer_slowdown_seconds` and `auditd_sealer_backpressure_seconds`).
    @Test func holdsForTheSealerAreReported() throws {
        let dir = temporaryDirectory("ledger-held")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let held = Mutex<[(Duration, Bool)]>([])
        var options = Sample.options(rotateBytes: 1 << 16)
        options.onSealerWait = { d, here in held.withLock { $0.append((d, here)) } }
        let l = try Ledger(directory: dir, signer: try Sample.signer(), options: options)
        var i = 0
        for _ in 0..<40 {
            _ = try l.appendAndWait(
                try (0..<100).map { _ in
                    i += 1
                    return try Sample.prepared(org: "org_\(i % 7)", i: i)
                })
        }
        try l.settle()
        let waits = held.withLock { $0 }
        let slowdowns = waits.filter { !$0.1 }
        let seals = waits.filter { $0.1 }
        #expect(!slowdowns.isEmpty && slowdowns.allSatisfy { $0.0 >= .milliseconds(5) }, "\(waits)")
        #expect(!seals.isEmpty, "\(waits)")
        #expect(l.store.segments().contains { $0.state == .sealed })
        try l.close()
    }

    /// The first seal of a log with many orgs creates a posting-list file per org: their names
    /// are made durable by an fsync of the folder when the records are synced, not one each
    /// (each took a folder write on the disk, and writers wait for the seal under back-pressure). A reopen still
    /// finds every org's list, and a query every entry.
    @Test func aSealOfManyNewOrgsSyncsTheirFolderOnce() throws {
        let dir = temporaryDirectory("ledger-orgs")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let signer = try Sample.signer()
        let plan = FaultPlan()
        let orgs = (0..<150).map { "org_\($0)" }
        do {
            let l = try Ledger(directory: dir, signer: signer, options: Sample.options(rotateBytes: 1 << 20))
            _ = try l.appendAndWait(try orgs.enumerated().map { try Sample.prepared(org: $1, i: $0) })
            try l.settle()
            FileOps.intercept(dir + "/index", with: plan)
            defer { FileOps.stopIntercepting(dir + "/index") }
            try l.store.rotate()
            try l.store.sealRotated()
            try l.close()
        }
        let folderSyncs = plan.operations.filter {
            if case .syncDirectory(let p) = $0 { return p.hasSuffix("/orgs") }
            return false
        }
        let created = plan.operations.filter {
            if case .create(let p) = $0 { return p.hasSuffix(".pld") }
            return false
        }
        #expect(created.count == orgs.count)
        // One when the seal's records are synced, one when the ledger closes (was one per file).
        #expect(folderSyncs.count <= 2, "\(folderSyncs.count) fsyncs of the posting lists' folder")
        let l = try Ledger(directory: dir, signer: signer, options: Sample.options(rotateBytes: 1 << 20))
        for org in orgs { #expect(try l.query(org: org).count == 1, "\(org)") }
        try l.close()
    }

    @Test func queriesSeeOnlyTheOrgAcrossSealedSegmentsAndSurviveReopen() throws {
        let dir = temporaryDirectory("ledger")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let signer = try Sample.signer()
        var expectedA: [UInt64] = []
        do {
            let l = try Ledger(directory: dir, signer: signer, options: Sample.options(rotateBytes: 8 << 10))
            for round in 0..<12 {
                let batch = try (0..<40).map { i -> PreparedEntry in
                    let n = round * 40 + i
                    return try Sample.prepared(
                        org: n % 5 == 0 ? "org_a" : "org_busy", i: n, outcome: n % 10 == 0 ? "denied" : "success")
                }
                for r in try l.appendAndWait(batch) where r.seq % 5 == 0 { expectedA.append(r.seq) }
                try l.settle()
                try l.store.sealRotated()
            }
            #expect(l.segments().filter { $0.state == .sealed }.count >= 3)
            try checkQueries(l, expectedA)
            try l.close()
        }
        let l = try Ledger(directory: dir, signer: signer, options: Sample.options(rotateBytes: 8 << 10))
        try checkQueries(l, expectedA)
        #expect(try l.query(org: "org_nobody").isEmpty)
        try l.close()
    }

    func checkQueries(_ l: Ledger, _ expectedA: [UInt64]) throws {
        // Newest first, paginated by cursor.
        var got: [UInt64] = []
        var cursor: UInt64? = nil
        while true {
            let page = try l.query(org: "org_a", limit: 7, cursor: cursor)
            got += page.map(\.seq)
            guard page.count == 7, let last = page.last else { break }
            cursor = last.seq
        }
        #expect(got == expectedA.reversed())
        // Oldest first.
        #expect(try l.query(org: "org_a", newestFirst: false, limit: 1000).map(\.seq) == expectedA)
        // Filters.
        let denied = try l.query(org: "org_a", filter: QueryFilter(outcome: .denied), limit: 1000)
        #expect(denied.map(\.seq) == expectedA.filter { $0 % 10 == 0 }.reversed())
        let t0 = Int64(1_740_787_200_000)
        let window = try l.query(
            org: "org_a", filter: QueryFilter(from: t0 + 100, to: t0 + 200), newestFirst: false, limit: 1000)
        #expect(window.map(\.seq) == expectedA.filter { $0 >= 100 && $0 < 200 })
        let cat = try l.query(org: "org_a", filter: QueryFilter(category: .authentication), limit: 1000)
        #expect(!cat.isEmpty && cat.allSatisfy { $0.fields.category == .authentication })
        // Every hit really is the org's entry.
        for h in try l.query(org: "org_a", limit: 5) { #expect(try l.entry(seq: h.seq).org == "org_a") }
    }

    @Test func anotherKeyIsRefused() throws {
        let dir = temporaryDirectory("ledger")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Ledger(directory: dir, signer: try Sample.signer(), options: Sample.options()).close()
        #expect(throws: AuditError.self) {
            try Ledger(directory: dir, signer: try Sample.signer(), options: Sample.options())
        }
    }

    @Test func secondOpenOfALiveDirectoryIsRefused() throws {
        let dir = temporaryDirectory("ledger")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try Sample.signer()
        let l = try Ledger(directory: dir, signer: s, options: Sample.options())
        let e = #expect(throws: AuditError.self) { try Ledger(directory: dir, signer: s, options: Sample.options()) }
        #expect(e?.code == .locked)
        try l.close()
    }

    @Test func checkpointsFollowWithinASecondWhileEntriesArrive() async throws {
        let dir = temporaryDirectory("ledger")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = Sample.options()
        o.background = true
        let l = try Ledger(directory: dir, signer: try Sample.signer(), options: o)
        _ = try await l.append([try Sample.prepared(org: "org_a", i: 1)])
        var waited = 0
        while (l.latestCheckpoint?.checkpoint.size ?? 0) < 1 && waited < 50 {
            try await Task.sleep(for: .milliseconds(100))
            waited += 1
        }
        #expect(l.latestCheckpoint?.checkpoint.size == 1)
        try l.close()
    }

    /// The sealer yields the cores to the writers (its compression threads inherit its nice
    /// value): at their own priority each seal held acks up.
    @Test func theSealerRunsBelowTheWritersPriority() throws {
        let dir = temporaryDirectory("ledger")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = Sample.options()
        o.background = true
        let l = try Ledger(directory: dir, signer: try Sample.signer(), options: o)
        defer { try? l.close() }
        #expect(l.sealerNice == LedgerOptions().sealerNice)
        #expect(l.sealerNice > ThreadPriority.current())
        // Linux names each thread in /proc/self/task/TID/comm; its nice value is field 19 of stat.
        func sealerNice() -> Int32? {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            for t in tasks {
                let comm = (try? String(contentsOfFile: "/proc/self/task/\(t)/comm", encoding: .utf8)) ?? ""
                guard comm.hasPrefix("auditlog-sealer"),
                    let stat = try? String(contentsOfFile: "/proc/self/task/\(t)/stat", encoding: .utf8),
                    let close = stat.lastIndex(of: ")")
                else { continue }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                return fields.count > 16 ? Int32(fields[16]) : nil
            }
            return nil
        }
        var seen = sealerNice()
        for _ in 0..<50 where seen != l.sealerNice {
            Thread.sleep(forTimeInterval: 0.1)
            seen = sealerNice()
        }
        #expect(seen == l.sealerNice, "the sealer thread's nice value, read from /proc")
    }

    @Test func recoveryRebuildsAMissingIndexFile() throws {
        let dir = temporaryDirectory("ledger")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try Sample.signer()
        do {
            let l = try Ledger(directory: dir, signer: s, options: Sample.options())
            _ = try l.appendAndWait((0..<50).map { try Sample.prepared(org: "org_\($0 % 4)", i: $0) })
            try l.sealNow()
            try l.close()
        }
        try FileManager.default.removeItem(atPath: DataDirectory(dir).index + "/" + OrgIndex.fileName(0))
        try FileManager.default.removeItem(atPath: dir + "/index/orgstate")
        let l = try Ledger(directory: dir, signer: s, options: Sample.options())
        #expect(l.recovery.indexesRebuilt == 1)
        #expect(try l.query(org: "org_1", limit: 100).count == 13)  // 1, 5, …, 49
        try l.close()
    }
}
