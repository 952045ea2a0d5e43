import Archive
import AuditBase
import ChainIndex
import Foundation
import LogProofs
import SegmentStore

/// When a writer is told its entry is stored (format-spec.md §3, §12.6).
public enum AckMode: String, Sendable, CaseIterable {
    /// After the covering `fdatasync`; the bucket follows within the tail interval.
    case local
    /// After the covering `fdatasync` and once the bucket holds the entry too.
    case replicated
}

/// How the log follows itself into the bucket.
public struct ReplicationOptions: Sendable {
    /// The longest a durable entry waits before its tail object is put (`local` mode).
    public var interval: Duration = .seconds(1)
    /// A tail object is put as soon as this many entries wait, interval or not.
    public var maxEntries: UInt64 = 8192
    /// The most one tail object holds (whole blocks; at least one).
    public var maxObjectBytes = 8 << 20
    /// How long the store locks a tail or checkpoint object (COMPLIANCE); they are removed
    /// after that, once a bundle holds their entries.
    public var tailLock: TimeInterval = 86400
    /// How long one request to the store may take before it counts as failed.
    public var requestTimeout: TimeInterval = 10
    /// How often objects a bundle made redundant are looked for and removed.
    public var cleanupInterval: TimeInterval = 300
    /// Told how long each tail object's PUT took, and whether it landed (the daemon's metrics).
    public var onTailPut: (@Sendable (Duration, Bool) -> Void)?

    public init() {}
}

/// What the bucket holds of the log, as `/healthz`, `/metrics` and the console show it.
public struct ReplicationStatus: Sendable, Equatable {
    /// Entries `[0, replicatedEnd)` are in the bucket (as bundles or tail objects).
    public var replicatedEnd: UInt64
    /// Entries durable on this machine.
    public var storedEnd: UInt64
    /// Durable entries the bucket does not hold yet.
    public var lagEntries: UInt64 { storedEnd > replicatedEnd ? storedEnd - replicatedEnd : 0 }
    /// Their bytes in the segment files, about.
    public var lagBytes: Int64
    /// How long the bucket has been behind (0 when it holds everything).
    public var lagSeconds: Double
    /// The size of the newest checkpoint the bucket backs (the one the daemon publishes).
    public var published: UInt64?
    /// Bundles in the bucket.
    public var bundles: Int
    /// Tail objects put since start.
    public var tailObjects: UInt64
    /// Why the last attempt to reach the store failed, while it fails.
    public var failing: String?
    /// Since when it fails.
    public var failingSince: Date?
}

/// Follows the log into the bucket (format-spec.md §12.6): every sealed segment's bundle
/// within seconds of its seal (`bundles` thread), the durable bytes of unsealed segments as
/// signed tail objects at most `interval` after they became durable (`tail` thread, up to four
/// objects in flight), and each checkpoint once every entry it covers is there (`publish`
/// thread). Only a checkpoint the bucket backs is
/// published (`published`): a lost machine then never leaves a witness or a reader holding a
/// checkpoint that no recovered log can extend.
public final class Replicator: @unchecked Sendable {
    /// The log.
    public let ledger: Ledger
    /// Builds and puts bundles.
    public let archiver: Archiver
    /// The bucket.
    public let bucket: S3Backend
    /// The options in force.
    public let options: ReplicationOptions
    let tailClient: S3Client
    let publishClient: S3Client

    struct Waiter {
        let end: UInt64
        let deadline: ContinuousClock.Instant
        let done: @Sendable (Bool) -> Void
    }

    private let cond = NSCondition()
    private var uploadedEnd: [UInt64: UInt64] = [:]
    private var bundled: Set<UInt64> = []
    private var end: UInt64 = 0
    private var _published: SignedCheckpoint?
    private var pending: [SignedCheckpoint] = []
    /// How many of the log's key successions are in the bucket (this process put them, or
    /// found them there: `putOnce` takes a key that holds the same bytes as success).
    private var successionsPut = 0
    private var waiters: [Waiter] = []
    private var wake = false
    private var wakePublish = false
    private var lastOpen: UInt64 = 0
    private var endMovedAt = ContinuousClock.now
    /// Tail uploads: in flight (all, and per segment), dispatched up to, landed out of order,
    /// and segments to put again from their first gap.
    private var inflight = 0
    private var inflightOf: [UInt64: Int] = [:]
    private var dispatched: [UInt64: UInt64] = [:]
    private var done: [UInt64: [UInt64: UInt64]] = [:]
    private var redo: Set<UInt64> = []
    static let maxInflight = 4
    /// Each upload blocks a thread until the store answers: threads of their own, never
    /// Dispatch's shared pool (see `BlockingWorkers`).
    private let uploads = BlockingWorkers(name: "auditd-put", count: maxInflight)
    private var stopping = false
    private var caughtUpAt = ContinuousClock.now
    /// When entries became durable: `(end, at)`, entries below `end` were durable at `at`.
    private var durableAt: [(end: UInt64, at: ContinuousClock.Instant)] = []
    private var tailFailure: (String, Date)?
    private var bundleFailure: (String, Date)?
    private var tailCount: UInt64 = 0
    private var running = 0
    private var lastCleanup = Date.distantPast
    /// The tail thread's own: unsealed segments whose tail is not all up yet.
    private var held: [UInt64: UnsealedSegment] = [:]
    private let resumeLock = NSLock()
    private var resumed = false

    /// A replicator of `ledger` into `bucket`, putting bundles through `archiver`.
    public init(ledger: Ledger, archiver: Archiver, bucket: S3Backend, options: ReplicationOptions = .init()) {
        self.ledger = ledger
        self.archiver = archiver
        self.bucket = bucket
        self.options = options
        let c = S3Client(bucket.client.settings, timeout: options.requestTimeout)
        // The tail thread retries itself, on its own schedule: a failed request fails at once.
        c.attempts = 1
        tailClient = c
        let p = S3Client(bucket.client.settings, timeout: options.requestTimeout)
        p.attempts = 1
        publishClient = p
    }

    // MARK: What the bucket holds

    /// The newest checkpoint the bucket backs: every entry it covers is in the bucket.
    public var published: SignedCheckpoint? { cond.withLock { _published } }

    /// Entries `[0, replicatedEnd)` are in the bucket.
    public var replicatedEnd: UInt64 { cond.withLock { end } }

    /// The state, for health and metrics.
    public var status: ReplicationStatus {
        let stored = ledger.storedCount
        let unsealed = ledger.unsealedSegments()
        return cond.withLock {
            var lagBytes: Int64 = 0
            for u in unsealed {
                let up = uploadedEnd[u.segment] ?? u.firstSeq
                if up < u.endSeq, let off = u.offset(ofSeq: up) { lagBytes += u.endOffset - off }
            }
            let failure = tailFailure ?? bundleFailure
            return ReplicationStatus(
                replicatedEnd: end, storedEnd: stored, lagBytes: lagBytes,
                lagSeconds: end >= stored
                    ? 0
                    : (ContinuousClock.now - (durableAt.first { $0.end > end }?.at ?? max(caughtUpAt, endMovedAt)))
                        .inSeconds,
                published: _published?.checkpoint.size, bundles: bundled.count, tailObjects: tailCount,
                failing: failure?.0, failingSince: failure?.1)
        }
    }

    /// `resume` once, before either thread's first round (retried while the store fails).
    private func ensureResumed() throws {
        try resumeLock.withLock {
            guard !resumed else { return }
            try resume()
            resumed = true
        }
    }

    /// Reads what the bucket already holds (its bundles, the tail objects of every segment
    /// without one, its newest checkpoint), so that nothing is put twice and the published
    /// checkpoint survives a restart. The threads call it before their first round.
    public func resume() throws {
        let names = try bucket.list()
        let have = Set(names.compactMap { UInt64($0.dropFirst("bundle-".count)) })
        var ends: [UInt64: UInt64] = [:]
        for s in ledger.segments() where s.state != .retired && !have.contains(s.segment) {
            ends[s.segment] = try Self.chainEnd(
                try bucket.objects(under: BucketLayout.tailFolder(s.segment)), segment: s.segment, from: s.firstSeq)
        }
        var newest: SignedCheckpoint?
        for name in try bucket.objects(under: BucketLayout.checkpointFolder).reversed()
        where BucketLayout.parseCheckpoint(name) != nil {
            guard let bytes = try bucket.firstVersionBytes(name),
                let cp = try? SignedCheckpoint(note: String(decoding: bytes, as: UTF8.self), verifier: ledger.verifier)
            else { continue }
            newest = cp
            break
        }
        cond.withLock {
            bundled = have
            uploadedEnd = ends
            _published = newest
            end = computeEnd(ledger.segments())
        }
    }

    /// Where the chain of tail objects named `names` (of segment `n`) that starts at `from`
    /// ends: the longest run of objects each starting where the one before ended.
    static func chainEnd(_ names: [String], segment n: UInt64, from: UInt64) throws -> UInt64 {
        var next: [UInt64: UInt64] = [:]
        for name in names {
            guard let t = BucketLayout.parseTail(name), t.segment == n else { continue }
            next[t.first] = max(next[t.first] ?? 0, t.end)
        }
        var at = from
        while let e = next[at], e > at { at = e }
        return at
    }

    /// Entries `[0, end)` covered: segment by segment, a bundle, or tail objects up to its end
    /// (`also`: a segment whose bundle is about to be put, counted as if it were there).
    private func computeEnd(_ segs: [SegmentInfo], also: UInt64? = nil) -> UInt64 {
        var w: UInt64 = 0
        for s in segs {
            if s.state == .retired || bundled.contains(s.segment) || s.segment == also {
                w = s.endSeq
                continue
            }
            let up = max(uploadedEnd[s.segment] ?? s.firstSeq, s.firstSeq)
            if up >= s.endSeq {
                w = s.endSeq
                if s.state == .open { break }
                continue
            }
            return up
        }
        return w
    }

    // MARK: Writers waiting in `replicated` mode

    /// Calls `done(true)` once the bucket holds every entry below `end`, or `done(false)` at
    /// `deadline` if it does not by then (or when the replicator stops). Never blocks.
    public func whenReplicated(
        end e: UInt64, deadline: ContinuousClock.Instant, _ done: @escaping @Sendable (Bool) -> Void
    ) {
        let now: Bool? = cond.withLock {
            if e <= end { return true }
            if stopping { return false }
            waiters.append(Waiter(end: e, deadline: deadline, done: done))
            wake = true
            cond.broadcast()
            return nil
        }
        if let now { done(now) }
    }

    /// From the commit path: entries below `end` are durable now. It dates them (the lag in
    /// seconds is the age of the oldest entry the bucket lacks) and wakes the tail thread early
    /// once `maxEntries` wait.
    public func committed(end e: UInt64) {
        let now = ContinuousClock.now
        cond.withLock {
            if let last = durableAt.last, last.end >= e { return }
            // Samples 10 ms apart at most (a second apart past 10,000 waiting, and past 100,000
            // the last one only grows): an entry is dated no later than it became durable.
            let spacing: Duration = durableAt.count < 10_000 ? .milliseconds(10) : .seconds(1)
            if let last = durableAt.last, now - last.at < spacing || durableAt.count >= 100_000 {
                durableAt[durableAt.count - 1].end = e
            } else {
                durableAt.append((e, now))
            }
            if e >= end + options.maxEntries {
                wake = true
                cond.broadcast()
            }
        }
        // A rotation wakes the tail thread too: the rotated segment's last blocks go up
        // before its seal takes it off the list (a few sealed ones stay readable for that).
        let open = ledger.openSegment
        cond.withLock {
            if open != lastOpen {
                lastOpen = open
                wake = true
                cond.broadcast()
            }
        }
    }

    /// Moves the bucket's end (called with `cond` held).
    private func setEnd(_ e: UInt64) {
        if e != end { endMovedAt = .now }
        end = e
    }

    /// Forgets the dates of entries the bucket now holds (called with `cond` held).
    private func pruneDates() {
        let covered = durableAt.prefix { $0.end <= end }.count
        if covered > 0 { durableAt.removeFirst(covered) }
    }

    /// Why writes in `replicated` mode should be refused now (the store has failed for longer
    /// than `bound`), or nil.
    public func refusal(after bound: Duration) -> String? {
        cond.withLock {
            guard let (why, since) = tailFailure, Date().timeIntervalSince(since) >= bound.inSeconds else {
                return nil
            }
            return
                "the object store has not accepted an upload for \(Int(Date().timeIntervalSince(since))) s (\(why)); in replicated mode writes are refused until it does"
        }
    }

    private func release(force: Bool = false) {
        let now = ContinuousClock.now
        let (ok, late): ([Waiter], [Waiter]) = cond.withLock {
            let ok = waiters.filter { $0.end <= end }
            let late = waiters.filter { $0.end > end && (force || $0.deadline <= now) }
            if !ok.isEmpty || !late.isEmpty {
                waiters.removeAll { w in w.end <= end || force || w.deadline <= now }
            }
            return (ok, late)
        }
        for w in ok { w.done(true) }
        for w in late { w.done(false) }
    }

    // MARK: The tail

    /// One round of the tail and publish threads, run synchronously: every durable byte not in
    /// the bucket is put, then the newest checkpoint it now backs. Throws the store's failure.
    public func replicateTail() throws {
        do { try tailRound() } catch {
            drainUploads()
            throw error
        }
        drainUploads()
        if let (why, _) = cond.withLock({ tailFailure }) { throw AuditError("tail upload failed: \(why)") }
        try publishRound()
    }

    /// The tail thread's round: every durable byte not in the bucket is sent on its way (the
    /// round does not wait for the uploads); a failure recorded since throws, to back off.
    func tailRound() throws {
        try recordingFailure {
            try ensureResumed()
            try putTail()
        }
        release()
        // Failing with nothing to put (writes refused, or none came): ask the store itself,
        // so that a store that is back ends the refusal without waiting for an upload.
        if cond.withLock({ tailFailure != nil && inflight == 0 && end >= dispatchedEnd() }),
            let r = try? tailClient.request("GET", key: nil, query: [("versioning", "")]), r.status == 200
        {
            cond.withLock { tailFailure = nil }
        }
        if let (why, _) = cond.withLock({ tailFailure }) { throw AuditError("tail upload failed: \(why)") }
    }

    /// Where the tail objects sent so far end, over the segments the bucket lacks (with `cond` held).
    private func dispatchedEnd() -> UInt64 { dispatched.values.max() ?? 0 }

    /// The publish thread's round: the newest checkpoint the bucket now backs is put and
    /// published. Its own thread, so that writers waiting for the tail never wait for it.
    func publishRound() throws {
        try recordingFailure {
            try ensureResumed()
            try publish()
        }
    }

    /// Records a failure to reach the store (a tail object that lands clears it).
    private func recordingFailure(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch {
            cond.withLock {
                if tailFailure == nil { tailFailure = ("\(error)", Date()) } else { tailFailure?.0 = "\(error)" }
            }
            throw error
        }
    }

    private func putTail() throws {
        // Segments the store stopped listing (sealed) stay held until their tail is up: the
        // descriptor outlives the file, so a seal that came first does not cost a bundle wait.
        var listed: Set<UInt64> = []
        var current = false
        while !current {
            // A fresh look after each wait for a free upload: what became durable meanwhile
            // goes in the next object, not in one more after it.
            let now = ledger.unsealedSegments()
            for u in now { held[u.segment] = u }
            listed = Set(now.map(\.segment))
            current = true
            for n in held.keys.sorted() {
                guard let u = held[n] else { continue }
                guard try putTail(of: u) else {
                    current = false
                    break
                }
                if !listed.contains(n) { held[n] = nil }
            }
        }
        // Bounded: past 16 sealed segments held, the oldest wait for their bundles instead.
        while held.count > 16 + listed.count, let oldest = held.keys.filter({ !listed.contains($0) }).min() {
            held[oldest] = nil
        }
        let segs = ledger.segments()
        let stored = ledger.storedCount
        cond.withLock {
            setEnd(computeEnd(segs))
            pruneDates()
            if end >= stored { caughtUpAt = .now }
        }
    }

    /// Puts the durable bytes of `u` the bucket does not hold yet, in objects of at most
    /// `maxObjectBytes` (whole blocks). One object is in flight at a time, or up to
    /// `maxInflight` while whole objects are ready (a backlog, or a store far away).
    /// They may land out of order; the segment counts as held up to the first gap, and after a
    /// failed one the segment is put again from there. False when it had to wait for a free
    /// upload: `u` is then out of date, and the caller looks again before cutting the next.
    private func putTail(of u: UnsealedSegment) throws -> Bool {
        let seg = u.segment
        var from: UInt64? = cond.withLock {
            if bundled.contains(seg) { return nil }
            let up = max(uploadedEnd[seg] ?? u.firstSeq, u.firstSeq)
            if redo.contains(seg) {
                guard (inflightOf[seg] ?? 0) == 0 else { return nil }
                redo.remove(seg)
                dispatched[seg] = up
            }
            return max(dispatched[seg] ?? up, up)
        }
        while let first = from, first < u.endSeq {
            guard let off = u.offset(ofSeq: first) else {
                throw AuditError(
                    "entry \(first) of segment \(seg) does not start a block; its tail cannot be cut there")
            }
            // One upload at a time unless a whole object is ready: each PUT then carries all
            // that became durable while the one before it was in flight. On the loopback
            // gateway, fewer and fuller PUTs answered sooner than more in parallel (alternating
            // runs, ack p99 22-28 ms against 28-33 ms with four at once: commit 0712948). Only
            // this thread takes uploads: a slot free now is still free below.
            let small = u.endOffset - off < Int64(options.maxObjectBytes)
            let waited = cond.withLock {
                var waited = false
                while !stopping && (inflight >= Self.maxInflight || (inflight > 0 && small)) {
                    // Woken with a slot free (an upload ended, or more became durable): look again.
                    if waited && inflight < Self.maxInflight { break }
                    cond.wait()
                    waited = true
                }
                return waited
            }
            if waited { return false }
            let to = u.boundary(after: off, maxBytes: options.maxObjectBytes)
            guard let end = u.seq(atOffset: to), end > first else { break }
            let obj = TailObject(
                segment: seg, offset: off, first: first, end: end, bytes: try u.read(from: off, to: to))
            let data = try obj.encoded(origin: ledger.origin) { try ledger.sign($0) }
            cond.withLock {
                while inflight >= Self.maxInflight { cond.wait() }
                inflight += 1
                inflightOf[seg, default: 0] += 1
                dispatched[seg] = end
            }
            let name = BucketLayout.tail(segment: seg, first: first, end: end)
            let until = Date().addingTimeInterval(options.tailLock)
            let segFirst = u.firstSeq
            uploads.async { [self] in
                let started = ContinuousClock.now
                let result = Result {
                    try bucket.putOnce(name, bytes: data, lockedUntil: until, fresh: true, client: tailClient)
                }
                if case .success = result {
                    options.onTailPut?(ContinuousClock.now - started, true)
                } else {
                    options.onTailPut?(ContinuousClock.now - started, false)
                }
                let segs = ledger.segments()
                cond.withLock {
                    inflight -= 1
                    inflightOf[seg, default: 1] -= 1
                    switch result {
                    case .success:
                        done[seg, default: [:]][first] = end
                        var up = max(uploadedEnd[seg] ?? segFirst, segFirst)
                        while let e = done[seg]?[up] {
                            done[seg]?[up] = nil
                            up = e
                        }
                        uploadedEnd[seg] = up
                        tailCount += 1
                        setEnd(computeEnd(segs))
                        pruneDates()
                        wakePublish = true
                        tailFailure = nil
                    case .failure(let error):
                        redo.insert(seg)
                        if tailFailure == nil {
                            tailFailure = ("\(error)", Date())
                        } else {
                            tailFailure?.0 = "\(error)"
                        }
                    }
                    cond.broadcast()
                }
                release()
            }
            from = end
        }
        return true
    }

    /// Waits until no tail object is in flight.
    private func drainUploads() {
        cond.withLock { while inflight > 0 { cond.wait() } }
    }

    /// Puts each key succession the bucket lacks (format-spec.md §8.8), before any checkpoint
    /// the new key signs: followers and recoveries read them to check those checkpoints. Each
    /// is locked as long as the `_operator` org's entries are kept, where the log records it.
    private func putSuccessions() throws {
        let notes = ledger.verifier.successions
        let from = cond.withLock { successionsPut }
        guard from < notes.count else { return }
        let years = (try? RetentionPolicy.load(dir: ledger.directory))?.years(for: "_operator") ?? 7
        let until =
            Calendar(identifier: .gregorian).date(byAdding: .year, value: years, to: Date())
            ?? Date().addingTimeInterval(Double(years) * 366 * 86400)
        for (i, s) in notes.enumerated().dropFirst(from) {
            try bucket.putOnce(
                BucketLayout.succession(handover: s.handover), bytes: Array(s.note.utf8), lockedUntil: until,
                client: publishClient)
            cond.withLock { successionsPut = i + 1 }
        }
    }

    /// Puts the newest signed checkpoint the bucket now backs, and publishes it.
    private func publish() throws {
        try putSuccessions()
        let backed = cond.withLock { end }
        if let cp = ledger.latestCheckpoint {
            cond.withLock {
                if cp.checkpoint.size > (pending.last?.checkpoint.size ?? _published?.checkpoint.size ?? 0) {
                    pending.append(cp)
                    if pending.count > 64 { pending.removeFirst(pending.count - 64) }
                }
            }
        }
        guard let best = cond.withLock({ pending.last { $0.checkpoint.size <= backed } }) else { return }
        // A new name each time (sizes only grow past what `resume` found): no read-back.
        try bucket.putOnce(
            BucketLayout.checkpoint(size: best.checkpoint.size), bytes: Array(best.note.utf8),
            lockedUntil: Date().addingTimeInterval(options.tailLock), fresh: true, client: publishClient)
        cond.withLock {
            _published = best
            pending.removeAll { $0.checkpoint.size <= best.checkpoint.size }
        }
    }

    // MARK: Bundles

    /// One round of the bundles thread, run synchronously: every sealed segment without a
    /// bundle in the bucket gets one (verified there, its download then dropped); then, at
    /// most every `cleanupInterval`, the objects bundles made redundant are removed.
    public func replicateBundles() throws {
        do {
            try ensureResumed()
            // A bundle embeds the first checkpoint covering its segment: it goes once the
            // bucket, with it, holds every entry that checkpoint covers, so that no object in the
            // bucket signs an entry the bucket lacks. After an outage that rule can wait on
            // itself (each sealed segment's checkpoint reaches into the next one, whose tail
            // is not all up either): then the oldest segment replication waits for goes once
            // everything before it is there (format-spec.md §12.6).
            let have = cond.withLock { bundled }
            let todo = ledger.segments().filter { $0.state == .sealed && !have.contains($0.segment) }
            var put = false
            for s in todo where !cond.withLock({ stopping }) {
                guard let cp = try ledger.checkpoint(atLeast: s.endSeq) else { continue }
                let segs = ledger.segments()
                guard cond.withLock({ computeEnd(segs, also: s.segment) }) >= cp.checkpoint.size else { continue }
                try bundle(s)
                put = true
            }
            // Stuck: the bucket's end has not moved for three intervals while a segment waits.
            let stored = ledger.storedCount
            let stuck = cond.withLock { end < stored && ContinuousClock.now - endMovedAt > options.interval * 3 }
            if !put && stuck {
                for s in todo where !cond.withLock({ stopping }) {
                    let segs = ledger.segments()
                    guard try ledger.checkpoint(atLeast: s.endSeq) != nil,
                        cond.withLock({ computeEnd(segs, also: s.segment) }) >= s.endSeq
                    else { break }
                    try bundle(s)
                }
            }
            cond.withLock { bundleFailure = nil }
        } catch {
            cond.withLock { bundleFailure = ("\(error)", bundleFailure?.1 ?? Date()) }
            throw error
        }
        if Date().timeIntervalSince(lastCleanup) >= options.cleanupInterval {
            lastCleanup = Date()
            try cleanUp()
        }
    }

    /// Puts sealed segment `s`'s bundle and counts it as held.
    private func bundle(_ s: SegmentInfo) throws {
        try archiver.putBundle(s)
        let after = ledger.segments()
        cond.withLock {
            bundled.insert(s.segment)
            setEnd(computeEnd(after))
            pruneDates()
            wakePublish = true
            cond.broadcast()
        }
        release()
    }

    /// Removes tail objects of segments a bundle holds and checkpoints older than the
    /// published one, once the store's lock on them has ended (the store refuses before).
    /// Returns how many objects went.
    @discardableResult
    public func cleanUp(now: Date = Date()) throws -> Int {
        let (have, newest) = cond.withLock { (bundled, _published?.checkpoint.size) }
        var removed = 0
        for (name, putAt) in try bucket.objectDates(under: "tail/") {
            guard let t = BucketLayout.parseTail(name), have.contains(t.segment),
                let putAt, now.timeIntervalSince(putAt) > options.tailLock
            else { continue }
            if try bucket.deleteAllVersions(name) { removed += 1 }
        }
        for (name, putAt) in try bucket.objectDates(under: BucketLayout.checkpointFolder) {
            guard let size = BucketLayout.parseCheckpoint(name), let newest, size < newest,
                let putAt, now.timeIntervalSince(putAt) > options.tailLock
            else { continue }
            if try bucket.deleteAllVersions(name) { removed += 1 }
        }
        return removed
    }

    // MARK: Threads

    /// Starts the tail, publish and bundles threads.
    public func start() {
        // (Linux keeps 15 bytes of a thread's name.)
        let tail = namedThread("repl-tail") { [self] in
            loop(name: "tail") { try self.tailRound() }
        }
        let publish = namedThread("repl-publish") { [self] in
            loop(name: "publish") { try self.publishRound() }
        }
        let bundles = namedThread("repl-bundles", nice: 5) { [self] in
            loop(name: "bundles") { try self.replicateBundles() }
        }
        cond.withLock { running = 3 }
        tail.start()
        publish.start()
        bundles.start()
    }

    private func loop(name: String, _ round: () throws -> Void) {
        var delay = options.interval
        while !cond.withLock({ stopping }) {
            do {
                try round()
                delay = options.interval
            } catch {
                // Back off while the store fails, up to ten intervals; writers in replicated
                // mode see the failure through `refusal` and their deadlines.
                delay = min(delay * 2, options.interval * 10)
            }
            release()
            // The tail thread also wakes for writers waiting in replicated mode (and their
            // deadlines) and when `maxEntries` wait; the publish thread when the bucket holds
            // more; the bundles thread only on its interval.
            let isTail = name == "tail"
            let isPublish = name == "publish"
            cond.withLock {
                let until = Date().addingTimeInterval(delay.inSeconds)
                while !(isTail && wake) && !(isPublish && wakePublish) && !stopping {
                    let next = isTail ? waiters.map(\.deadline).min() : nil
                    let limit = next.map { d in Date().addingTimeInterval(max(0, (d - .now).inSeconds)) }
                    if !cond.wait(until: min(until, limit ?? until)) { break }
                }
                if isTail { wake = false }
                if isPublish { wakePublish = false }
            }
        }
        cond.withLock {
            running -= 1
            cond.broadcast()
        }
    }

    /// Stops the threads after their current round (a last tail round first, so that what is
    /// durable reaches the bucket when it can); waiting writers are told `false`.
    ///
    /// Bounded: a store that hangs holds the stop at most `stopWait` (a request may take up to
    /// its timeout); what did not go up then goes at the next start.
    public func stop(stopWait: TimeInterval = 15) {
        let deadline = Date().addingTimeInterval(stopWait)
        let stopped = cond.withLock {
            stopping = true
            cond.broadcast()
            while running > 0 { if !cond.wait(until: deadline) { break } }
            return running == 0
        }
        if stopped { try? replicateTail() }
        release(force: true)
        uploads.shutdown()
    }
}
