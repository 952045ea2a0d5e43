import AuditBase
import ChainIndex
import Foundation
import Logging
import Metrics
import SegmentStore
import ServiceLifecycle
import Verification

/// Rechecks everything already verified, from the first entry, on a schedule: every entry's
/// content hash and both chains, every leaf and stored tree hash, every checkpoint's signature
/// and root, archived segments through their signed stubs. A byte that rots or is edited after
/// its first check is found within one `interval`, not only at the next restart. It paces
/// itself to `bytesPerSecond` of segment data, and a segment that the archiver moves while it
/// is being read is stepped over as archived, never reported as a failure.
final class RecheckService: Service, @unchecked Sendable {
    let ledger: Ledger
    let interval: Duration
    let bytesPerSecond: Double
    let metrics: DaemonMetrics
    let health: HealthState
    let logger: Logger
    let passes = Counter(label: "auditd_recheck_passes_total")
    let position = Gauge(label: "auditd_recheck_position")
    let lastPass = Gauge(label: "auditd_recheck_last_pass_seconds")
    let lastCompleted = Gauge(label: "auditd_recheck_last_completed_timestamp_seconds")

    init(
        ledger: Ledger, interval: Duration, bytesPerSecond: Double, metrics: DaemonMetrics, health: HealthState,
        logger: Logger
    ) {
        self.ledger = ledger
        self.interval = interval
        self.bytesPerSecond = bytesPerSecond
        self.metrics = metrics
        self.health = health
        self.logger = logger
    }

    func run() async throws {
        // The pass blocks (reads and hashes); it runs on a thread of its own and checks between
        // batches whether the daemon is stopping. After a failure the log needs an operator,
        // not more passes (the service keeps running: a service that returns stops the daemon).
        await onBackgroundThread(every: interval, first: interval, name: "auditd-recheck", nice: 10) { stopping in
            if self.health.failure == nil { self.pass(stopping) }
        }
    }

    /// One full pass. Failures go to the log (critical), the failure counter and `/healthz`.
    func pass(_ stopping: StopFlag) {
        let started = ContinuousClock.now
        do {
            var checker = ChainChecker(ledger: ledger, checkpoints: try ledger.verifiedCheckpoints().0)
            checker.indexDirectory = DataDirectory(ledger.directory).index
            let end = ledger.sealedEnd
            let bytesPerEntry = max(
                1.0,
                Double(
                    ledger.segments().filter { $0.state == .sealed }.reduce(0) { $0 + max(0, fileSize($1.path)) })
                    / Double(max(1, end)))
            var paced = ContinuousClock.now
            var lastPosition: UInt64 = 0
            let failure = try checker.checkSegments(
                upTo: end, verifier: ledger.verifier,
                progress: { p in
                    self.position.record(Int64(p))
                    // Sleep off whatever the batch read beyond the allowed rate.
                    let due = Double(p - lastPosition) * bytesPerEntry / self.bytesPerSecond
                    lastPosition = p
                    let spent = ContinuousClock.now - paced
                    let spentSeconds = spent.inSeconds
                    if due > spentSeconds && !stopping.isSet { Thread.sleep(forTimeInterval: due - spentSeconds) }
                    paced = .now
                }, stop: { stopping.isSet })
            if let failure { return fail(failure.description) }
            if stopping.isSet {
                logger.info("recheck pass stopped by the shutdown", metadata: ["entries": "\(checker.position)"])
                return
            }
            // The org-state snapshot, when it describes exactly what was just checked (a seal
            // during the pass moves it on: the next pass checks it then).
            let statePath = DataDirectory(ledger.directory).orgState
            if let snap = try Ledger.checkedOrgState(statePath), snap.end == checker.position,
                let f = checker.checkOrgState(statePath, orgs: snap.orgs)
            {
                return fail(f.description)
            }
            // The posting lists queries read (judged only below their watermark and the
            // segments sealed when the pass looked).
            if let f = PostingCheck.check(
                indexDirectory: DataDirectory(ledger.directory).index, segments: ledger.segments(), served: true)
            {
                return fail(f.description)
            }
            passes.increment()
            let took = ContinuousClock.now - started
            lastPass.record(took.components.seconds)
            lastCompleted.record(Int64(Date().timeIntervalSince1970))
            logger.info("recheck pass complete", metadata: ["entries": "\(checker.position)", "took": "\(took)"])
        } catch {
            fail("\(error)")
        }
    }

    private func fail(_ m: String) {
        metrics.verifyFailures.increment()
        health.fail(m)
        logger.critical("RECHECK FAILED: data verified earlier no longer verifies", metadata: ["failure": "\(m)"])
    }

    private func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }
}
