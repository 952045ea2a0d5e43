import Archive
import AuditBase
import AuditEntries
import ChainIndex
import Foundation
import LogProofs
import Replication
import SegmentStore
import TestSupport
import Testing

/// Issue 21: the log follows itself into the bucket (a real Ceph gateway on loopback, started
/// by TestSupport's ObjectStore), and a data directory comes back from the bucket alone.
@Suite(.serialized) struct ReplicationTests {
    /// A new bucket with Object Lock, and a backend on `PREFIX` in it.
    static func bucket() throws -> (String, S3Backend) {
        let name = "auditlog-repl-\(UUID().uuidString.prefix(8).lowercased())"
        let settings = try S3Settings(url: "s3://\(name)/log", environment: try ObjectStore.clientEnvironment())
        try S3Client(settings).expect(
            "creating bucket \(name)", "PUT", key: nil, headers: [("x-amz-bucket-object-lock-enabled", "true")])
        let cache = NSTemporaryDirectory() + "repl-cache-\(UUID().uuidString.prefix(8))"
        return (name, try S3Backend(settings, cache: cache))
    }

    /// A ledger in a fresh directory (small segments, nothing in the background).
    static func ledger(_ root: String, signer: NoteSigner) throws -> Ledger {
        var o = LedgerOptions()
        o.retired = ArchiveTier()
        o.background = false
        o.store.rotateBytes = 1 << 20
        return try Ledger(directory: root + "/data", signer: signer, options: o)
    }

    static func entries(_ n: Int, from k: Int, org: (Int) -> String = { "org_\($0 % 3)" }) throws -> [PreparedEntry] {
        try (k..<(k + n)).map { i in
            let json =
                #"{"org":"\#(org(i))","category":"access","action":"access.granted","actor":{"type":"human","id":"u\#(i)"},"target":{"type":"p","id":"p\#(i)"},"outcome":"success","source":{"service":"svc"},"occurred_at":"2026-01-01T00:00:00Z","metadata":{"i":\#(i)}}"#
            return try Entry.prepare(
                json: Array(json.utf8), receivedAt: ReceivedAt.now(), writer: Writer(uid: 0, gid: 0, via: "test"))
        }
    }

    /// A fresh directory (removed by `cleanup`), key, bucket, ledger and replicator.
    struct Setup {
        let root: String
        let signer: NoteSigner
        let backend: S3Backend
        let l: Ledger
        let r: Replicator
        func cleanup() {
            try? FileManager.default.removeItem(atPath: root)
            try? FileManager.default.removeItem(atPath: backend.cache)
        }
    }

    static func setUp(options: ReplicationOptions? = nil) throws -> Setup {
        let root = NSTemporaryDirectory() + "repl-\(UUID().uuidString.prefix(8))"
        let signer = try NoteSigner.generate(name: "audit.test/log")
        let (_, backend) = try Self.bucket()
        let l = try Self.ledger(root, signer: signer)
        let r =
            options.map {
                Replicator(ledger: l, archiver: Archiver(ledger: l, backend: backend), bucket: backend, options: $0)
            }
            ?? Self.replicator(l, backend)
        return Setup(root: root, signer: signer, backend: backend, l: l, r: r)
    }

    static func replicator(_ l: Ledger, _ backend: S3Backend) -> Replicator {
        var o = ReplicationOptions()
        o.interval = .milliseconds(50)
        return Replicator(ledger: l, archiver: Archiver(ledger: l, backend: backend), bucket: backend, options: o)
    }

    /// Every leaf of `a` is the leaf of `b` at the same position, and they hold as many.
    static func sameLog(_ a: Ledger, _ b: Ledger) throws {
        #expect(a.size == b.size)
        var seq: UInt64 = 0
        while seq < a.size {
            let n = Int(min(4096, a.size - seq))
            #expect(try a.leaves(from: seq, count: n) == b.leaves(from: seq, count: n))
            seq += UInt64(n)
        }
    }

    @Test func sealedBundlesTailObjectsAndCheckpointsRebuildTheLogFromTheBucketAlone() throws {
        let t = try Self.setUp()
        defer { t.cleanup() }
        let (root, signer, backend, l, r) = (t.root, t.signer, t.backend, t.l, t.r)
        // Two sealed segments, then entries in the open one, each step replicated.
        _ = try l.appendAndWait(try Self.entries(300, from: 0))
        try r.replicateTail()
        try l.sealNow()
        _ = try l.appendAndWait(try Self.entries(200, from: 300))
        try l.sealNow()
        try r.replicateTail()
        try r.replicateBundles()
        #expect(r.status.bundles == 2, "both sealed segments have their bundle: \(r.status)")
        #expect(r.replicatedEnd == 500, "segment 1 was sealed before its tail went up: its bundle covers it")
        try r.replicateTail()
        _ = try l.appendAndWait(try Self.entries(150, from: 500))
        try l.checkpointNow()
        // Signed, but not published: the bucket does not hold entries 500..<650 yet.
        #expect(l.latestCheckpoint?.checkpoint.size == 650)
        #expect(r.published?.checkpoint.size == 500)
        try r.replicateTail()
        #expect(r.replicatedEnd == 650)
        #expect(r.published?.checkpoint.size == 650, "published once the bucket holds what it covers")
        #expect(r.status.lagEntries == 0)
        let names = try backend.objects(under: "tail/")
        #expect(names.contains { BucketLayout.parseTail($0)?.segment == 2 }, "the open segment's tail: \(names)")

        // The machine is lost: a new directory from the bucket alone (the key kept elsewhere).
        try FileManager.default.createDirectory(atPath: root + "/keys", withIntermediateDirectories: true)
        let report = try BucketRecovery.recover(
            bucket: backend, into: root + "/recovered", signer: signer, keyPath: root + "/keys/log.key")
        #expect(report.bundles == 2)
        #expect(report.tailSegments == 1)
        #expect(report.entries == 650)
        #expect(report.checkpointSize == 650)
        var o = LedgerOptions()
        o.retired = ArchiveTier()
        o.background = false
        o.signerState = root + "/keys/log.key.state"
        let back = try Ledger(directory: root + "/recovered", signer: signer, options: o)
        try Self.sameLog(l, back)
        // It continues the same log: one more entry, and the old checkpoint is consistent with it.
        _ = try back.appendAndWait(try Self.entries(1, from: 650))
        try back.checkpointNow()
        let proof = try back.consistencyProof(old: 650, new: 651)
        let old = try #require(r.published?.checkpoint)
        let new = try #require(back.latestCheckpoint?.checkpoint)
        #expect(Merkle.verifyConsistency(old: 650, new: 651, oldRoot: old.root, newRoot: new.root, proof: proof))
        _ = try back.close()
        _ = try l.close()
    }

    /// Issue 25 §3: the log's key handed on twice (once in a sealed segment, once in the
    /// tail). The bucket keeps the statements; a follower that trusts only the first key
    /// follows them to the newest checkpoint, and a recovery with the newest key rebuilds a
    /// directory whose log.json still names the first key and both statements.
    @Test func keySuccessionsTravelThroughTheBucketToFollowersAndRecoveries() throws {
        let t = try Self.setUp()
        defer { t.cleanup() }
        let (root, first, backend, l, r) = (t.root, t.signer, t.backend, t.l, t.r)
        let second = try NoteSigner.generate(name: "audit.test/log")
        let third = try NoteSigner.generate(name: "audit.test/log")
        _ = try l.appendAndWait(try Self.entries(100, from: 0))
        _ = try l.handOver(to: second, grace: 10, actor: "uid:0", via: "test")
        _ = try l.appendAndWait(try Self.entries(100, from: 100))
        try l.sealNow()
        try r.replicateTail()
        try r.replicateBundles()
        _ = try l.handOver(to: third, grace: 0, actor: "uid:0", via: "test")
        _ = try l.appendAndWait(try Self.entries(50, from: 200))
        try l.checkpointNow()
        try r.replicateTail()
        #expect(r.published?.checkpoint.size == 252)
        let stored = try backend.firstVersions(under: BucketLayout.successionFolder).keys.sorted()
        #expect(stored == [BucketLayout.succession(handover: 101), BucketLayout.succession(handover: 202)])

        // A follower configured with the first key.
        var fo = LedgerOptions()
        fo.retired = ArchiveTier()
        fo.background = false
        let follower = try Ledger(following: root + "/replica", verifier: LogKeys(first.verifier), options: fo)
        let round = try Follower(ledger: follower, bucket: backend).round()
        #expect(round.checkpoint == 252)
        #expect(follower.verifier.current == third.verifier)
        try Self.sameLog(l, follower)
        _ = try follower.close()

        // A recovery needs the newest key, and records the whole chain.
        let refused = #expect(throws: AuditError.self) {
            try BucketRecovery.recover(bucket: backend, into: root + "/wrong", signer: second, keyPath: nil)
        }
        #expect(refused?.message.contains("recover with the log's current key") == true)
        let report = try BucketRecovery.recover(bucket: backend, into: root + "/recovered", signer: third, keyPath: nil)
        #expect(report.entries == 252)
        let keys = try Ledger.verifierKey(directory: root + "/recovered")
        #expect(keys.original == first.verifier && keys.notes == l.verifier.notes)
        var o = LedgerOptions()
        o.retired = ArchiveTier()
        o.background = false
        let back = try Ledger(directory: root + "/recovered", signer: third, options: o)
        try Self.sameLog(l, back)
        _ = try back.close()
        _ = try l.close()
    }

    /// A bundle replication put while its segment is still hot (no stub yet) follows the log's
    /// legal holds too (clean-clone runs: `hold create --archive` left such a bundle unheld).
    @Test func aLegalHoldReachesBundlesOfSegmentsStillHot() throws {
        let s = try Self.setUp()
        defer { s.cleanup() }
        _ = try s.l.appendAndWait(try Self.entries(50, from: 0))
        try s.l.sealNow()
        let sealed = try #require(s.l.segments().first { $0.state == .sealed })
        let name = try Archiver(ledger: s.l, backend: s.backend).putBundle(sealed)
        #expect(try s.backend.legalHold(bundle: name) == false)
        _ = try LegalHolds.create(
            dir: s.l.directory, org: "org_1", from: nil, to: nil, reason: "subpoena", authority: "GC", now: Date())
        #expect(try Archiver.mirrorLegalHolds(dataDir: s.l.directory, backend: s.backend) == 1)
        #expect(try s.backend.legalHold(bundle: name), "the hot segment's bundle is held")
        try s.l.close()
    }

    @Test func aSegmentWhoseTailIsUpButWhoseBundleIsNotComesBackSealed() throws {
        // Segment 0's tail went up, then it was sealed; the bundles thread put segment 1's
        // bundle first (it was the one replication waited for), and the machine was lost.
        let t = try Self.setUp()
        defer { t.cleanup() }
        let (root, signer, backend, l, r) = (t.root, t.signer, t.backend, t.l, t.r)
        _ = try l.appendAndWait(try Self.entries(100, from: 0))
        try r.replicateTail()
        try l.sealNow()
        _ = try l.appendAndWait(try Self.entries(100, from: 100))
        try l.sealNow()
        let seg1 = try #require(l.segments().first { $0.segment == 1 })
        _ = try Archiver(ledger: l, backend: backend).replicate(seg1)
        _ = try l.appendAndWait(try Self.entries(10, from: 200))
        try l.checkpointNow()
        try r.replicateTail()
        #expect(try backend.list() == ["bundle-00000000000000000001"])
        let report = try BucketRecovery.recover(
            bucket: backend, into: root + "/recovered", signer: signer, keyPath: nil)
        #expect(report.bundles == 1 && report.tailSegments == 2 && report.entries == 210, "\(report)")
        var o = LedgerOptions()
        o.retired = ArchiveTier()
        o.background = false
        let back = try Ledger(directory: root + "/recovered", signer: signer, options: o)
        #expect(back.segments().map(\.state) == [.sealed, .sealed, .open])
        try Self.sameLog(l, back)
        _ = try back.close()
        _ = try l.close()
    }

    @Test func aCheckpointIsNeverPublishedBeforeTheBucketHoldsItsEntries() throws {
        let t = try Self.setUp()
        defer { t.cleanup() }
        let (backend, l, r) = (t.backend, t.l, t.r)
        for round in 0..<5 {
            _ = try l.appendAndWait(try Self.entries(50, from: round * 50))
            try l.checkpointNow()
            let before = r.published?.checkpoint.size ?? 0
            #expect(before <= r.replicatedEnd)
            #expect(
                before < l.latestCheckpoint?.checkpoint.size ?? 0, "round \(round): not published before its upload")
            try r.replicateTail()
            let p = try #require(r.published)
            #expect(p.checkpoint.size <= r.replicatedEnd)
            #expect(p.checkpoint.size == UInt64((round + 1) * 50))
            // And the bucket holds it: what a restarted daemon publishes again.
            #expect(
                try backend.firstVersionBytes(BucketLayout.checkpoint(size: p.checkpoint.size)) == Array(p.note.utf8))
        }
        _ = try l.close()
    }

    @Test func writersInReplicatedModeAreReleasedOnlyOnceTheBucketHoldsTheirEntries() throws {
        let t = try Self.setUp()
        defer { t.cleanup() }
        let (l, r) = (t.l, t.r)
        let got = Locked<[Bool]>([])
        let receipts = try l.appendAndWait(try Self.entries(10, from: 0))
        r.whenReplicated(end: receipts[9].seq + 1, deadline: .now + .seconds(30)) { ok in got.mutate { $0.append(ok) } }
        #expect(got.value.isEmpty, "released before any upload")
        r.start()
        defer { r.stop() }
        let until = ContinuousClock.now + .seconds(20)
        while got.value.isEmpty && ContinuousClock.now < until { Thread.sleep(forTimeInterval: 0.01) }
        #expect(got.value == [true])
        #expect(r.replicatedEnd >= 10)
        // A deadline that passes is answered false, never left waiting.
        let late = Locked<[Bool]>([])
        r.whenReplicated(end: 1_000_000, deadline: .now + .milliseconds(100)) { ok in late.mutate { $0.append(ok) } }
        let until2 = ContinuousClock.now + .seconds(10)
        while late.value.isEmpty && ContinuousClock.now < until2 { Thread.sleep(forTimeInterval: 0.01) }
        #expect(late.value == [false])
        _ = try l.close()
    }

    @Test func aForgedOrAlteredTailObjectIsRefusedByName() throws {
        let t = try Self.setUp()
        defer { t.cleanup() }
        let (root, signer, backend, l, r) = (t.root, t.signer, t.backend, t.l, t.r)
        _ = try l.appendAndWait(try Self.entries(40, from: 0))
        try r.replicateTail()
        let open = try #require(l.unsealedSegments().last)
        // Someone with write access to the bucket adds the next tail object: entries that
        // were never written, its note signed with another key.
        let forger = try NoteSigner.generate(name: "audit.test/log")
        let fake = TailObject(segment: open.segment, offset: open.endOffset, first: 40, end: 41, bytes: [1, 2, 3, 4])
        let name = BucketLayout.tail(segment: open.segment, first: 40, end: 41)
        try backend.putOnce(
            name, bytes: try fake.encoded(origin: "audit.test/log") { try forger.sign($0) },
            lockedUntil: Date().addingTimeInterval(60))
        let e = #expect(throws: (any Error).self) {
            try BucketRecovery.recover(bucket: backend, into: root + "/recovered", signer: signer, keyPath: nil)
        }
        let text = "\(e.map { "\($0)" } ?? "")"
        #expect(text.contains(backend.objectKey(name)) && text.contains("signature"), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: root + "/recovered"), "nothing half-built is left")

        // The decoder refuses one altered byte, by name, and a note for another segment's place.
        let good = TailObject(segment: 0, offset: 0, first: 0, end: 1, bytes: Array(repeating: 7, count: 64))
        var bytes = try good.encoded(origin: "audit.test/log") { try signer.sign($0) }
        #expect(try TailObject.decode(bytes, name: "x", verifier: LogKeys(signer.verifier)) == good)
        bytes[bytes.count - 1] ^= 1
        let e2 = #expect(throws: TailObjectError.self) {
            try TailObject.decode(bytes, name: "tail/x", verifier: LogKeys(signer.verifier))
        }
        #expect(e2?.object == "tail/x" && e2?.reason.contains("altered") == true)
        _ = try l.close()
    }

    @Test func aGapInTheBucketBelowItsCheckpointIsRefused() throws {
        // A lock of one second: the tail objects can be deleted soon after, as a store without
        // (or past) its lock would allow. The bucket's checkpoint then covers missing entries.
        var o = ReplicationOptions()
        o.tailLock = 1
        let t = try Self.setUp(options: o)
        defer { t.cleanup() }
        let (root, signer, backend, l, r) = (t.root, t.signer, t.backend, t.l, t.r)
        for k in 0..<3 {
            _ = try l.appendAndWait(try Self.entries(20, from: k * 20))
            try l.checkpointNow()
            try r.replicateTail()
        }
        #expect(r.published?.checkpoint.size == 60)
        let middle = try #require(try backend.objects(under: "tail/").first { BucketLayout.parseTail($0)?.first == 20 })
        Thread.sleep(forTimeInterval: 2.5)
        #expect(try backend.deleteAllVersions(middle), "the lock has ended")
        let e = #expect(throws: (any Error).self) {
            try BucketRecovery.recover(bucket: backend, into: root + "/recovered", signer: signer, keyPath: nil)
        }
        let text = "\(e.map { "\($0)" } ?? "")"
        #expect(text.contains("checkpoint at size 40") && text.contains("missing from the bucket"), "\(text)")
        _ = try l.close()
    }
}
