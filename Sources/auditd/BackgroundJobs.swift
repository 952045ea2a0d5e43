import Archive
import AuditBase
import ChainIndex
import Foundation
import Logging
import SegmentStore
import ServiceLifecycle
import Verification

#if canImport(Glibc)
import Glibc
#endif

/// Continuous verification, run as a service: every pass rechecks the entries of newly sealed
/// segments (content hashes, both chains, leaves against the stored tree, the root at every
/// checkpoint size) and every new checkpoint's signature. A failure is logged at critical,
/// counted, and turns `/healthz` to 503; it is never silently skipped.
struct VerificationService: Service {
    let ledger: Ledger
    let interval: Duration
    let metrics: DaemonMetrics
    let health: HealthState
    let logger: Logger

    /// What one pass carries to the next.
    final class State: @unchecked Sendable {
        var checker: ChainChecker
        var cpOffset: Int64 = 0
        var lastSize: UInt64?
        var failed = false
        init(_ c: ChainChecker) { checker = c }
    }

    func run() async throws {
        var checker = ChainChecker(ledger: ledger, checkpoints: [])
        checker.indexDirectory = DataDirectory(ledger.directory).index
        let state = State(checker)
        // A pass reads and hashes for a while: on a thread of its own, at a lower priority than
        // the writers, never on the shared concurrency pool; the first (the whole log) stops
        // between batches when the daemon does.
        await onBackgroundThread(every: interval, name: "auditd-verify", nice: 10) { stopping in
            if !state.failed { self.pass(state, stopping) }
            metrics.treeSize.record(Int64(ledger.size))
            metrics.checkpoints.record(Int64(ledger.checkpointCount))
            let segs = ledger.segments()
            metrics.segments.record(segs.count)
            metrics.sealedSegments.record(segs.filter { $0.state == .sealed }.count)
            if let e = ledger.backgroundError { logger.error("background sealing failed", metadata: ["error": "\(e)"]) }
        }
    }

    /// Tests only: a pause after each step of a pass (`AUDITLOG_TEST_PAUSE_VERIFY_STEP`,
    /// seconds), so that a shutdown can be placed in the middle of one.
    static let testPause =
        ProcessInfo.processInfo.environment["AUDITLOG_TEST_PAUSE_VERIFY_STEP"].flatMap(Double.init) ?? 0

    /// One pass: new checkpoints, then the segments sealed since the last pass (up to where
    /// `stopping` ends it; the next pass goes on from there).
    func pass(_ s: State, _ stopping: StopFlag) {
        var cpOffset = s.cpOffset
        var lastSize = s.lastSize
        var checker = s.checker
        var failed = s.failed
        defer { (s.cpOffset, s.lastSize, s.checker, s.failed) = (cpOffset, lastSize, checker, failed) }
        do {
            let (more, next) = try ledger.verifiedCheckpoints(from: cpOffset, after: lastSize)
            cpOffset = next
            lastSize = more.last?.size ?? lastSize
            checker.addCheckpoints(more)
            try ledger.reinstateRestored()
            let end = ledger.sealedEnd
            let failure = try checker.checkSegments(
                upTo: end, verifier: ledger.verifier,
                progress: { p in
                    // /healthz follows a long pass (the first covers the whole log).
                    health.progress(p)
                    if Self.testPause > 0 { Thread.sleep(forTimeInterval: Self.testPause) }
                }, stop: { stopping.isSet })
            if stopping.isSet && checker.position < end {
                logger.notice(
                    "verification stopped by the shutdown; the next start verifies the log from its first entry",
                    metadata: ["checked": "\(checker.position)", "of": "\(end)"])
            }
            metrics.verifyRuns.increment()
            metrics.verifiedEntries.record(Int64(checker.position))
            health.progress(checker.position)
            if let failure {
                failed = true
                metrics.verifyFailures.increment()
                health.fail(failure.description)
                logger.critical("VERIFICATION FAILED", metadata: ["failure": "\(failure)"])
            }
        } catch {
            failed = true
            metrics.verifyFailures.increment()
            health.fail("\(error)")
            logger.critical("VERIFICATION FAILED", metadata: ["error": "\(error)"])
        }
    }
}

/// The ledger's life in the daemon's group: its maintenance (every 0.2 s the commit thread is
/// asked for its periodic work, rotation of an old segment and the checkpoint; the sealer
/// seals rotated segments on a thread of its own), the idempotency sweep,
/// and, first to start and last to stop, the close at shutdown: final checkpoint, rotated
/// segments sealed, tree synced, directory unlocked.
struct LedgerService: Service {
    let ledger: Ledger
    let idempotency: IdempotencyCache
    let logger: Logger

    func run() async throws {
        let sealer = BackgroundLoop(name: "auditd-sealer", interval: 0.1, nice: ledger.sealerNice) { [ledger] in
            ledger.sealRotated()
        }
        var swept = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(200)) }
            // Rotation of an old open segment and the periodic checkpoint, on the commit thread.
            ledger.tick()
            if ContinuousClock.now - swept >= .seconds(30) {
                swept = .now
                idempotency.sweep()
                // Give freed memory back to the system: after a burst of connections or a large
                // export, glibc keeps it in its arenas and RSS would stay high for good.
                _ = MallocTrim.function?(0)
            }
        }
        sealer.stop()
        for problem in try ledger.close() {
            logger.warning("shutdown step failed; it is retried at the next start", metadata: ["error": "\(problem)"])
        }
        logger.info(
            "log closed cleanly",
            metadata: ["size": "\(ledger.size)", "checkpoint": "\(ledger.latestCheckpoint?.checkpoint.size ?? 0)"])
    }
}

/// Moves sealed segments older than the hot window into the archive tier, every `interval`.
struct ArchiverService: Service {
    let archiver: Archiver
    let hotWindow: TimeInterval
    let interval: Duration
    let health: HealthState
    let logger: Logger

    func run() async throws {
        // A pass reads, writes and fsyncs for as long as its bundles take: on a thread of its
        // own, never on the shared concurrency pool (two threads on this machine), where it
        // would hold up every other service and the read port's handlers.
        await onBackgroundThread(every: interval, name: "auditd-archive", nice: 5) { _ in self.pass() }
    }

    /// One pass: every sealed segment past the hot window into the archive tier.
    func pass() {
        do {
            // An object store is checked before each pass: while it cannot be reached,
            // /healthz says degraded and the hot copies stay where they are.
            if let s3 = archiver.backend as? S3Backend {
                do {
                    try s3.checkBucket()
                    health.failArchive(nil)
                } catch {
                    health.failArchive("\(error)")
                    throw error
                }
            }
            let made = try archiver.run(hotWindow: hotWindow)
            if !made.isEmpty {
                logger.info("archived sealed segments", metadata: ["bundles": "\(made.joined(separator: ","))"])
            }
            health.archived(made.isEmpty ? "nothing was due" : "\(made.count) bundle\(made.count == 1 ? "" : "s") made")
        } catch {
            health.archived("failed: \(error)")
            logger.error("archiving failed; the hot copies stay in place", metadata: ["error": "\(error)"])
        }
    }
}

/// glibc's `malloc_trim`, found at run time (Swift's Glibc module does not export
/// `<malloc.h>`); nil where the C library has none.
enum MallocTrim {
    static let function: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(sym, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()
}
