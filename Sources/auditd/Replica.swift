import Archive
import ArgumentParser
import AuditAccess
import AuditBase
import AuditEntries
import ChainIndex
import Foundation
import Hummingbird
import LogProofs
import Logging
import NIOCore
import NIOPosix
import Prometheus
import Replication
import SegmentStore
import ServiceLifecycle

/// `auditd --replica-of s3://BUCKET[/PREFIX] --replica-key KEY`: a read replica. It follows
/// the bucket a primary replicates into (`Follower`: every object verified, every entry taken
/// through the chain rule, every checkpoint checked against its own tree) and serves the read
/// port and console from what it holds. It has no ingest socket and no signing key; its tokens
/// are the log's own, made from the `audit.token.*` entries it follows.
extension AuditD {
    func runReplica(
        _ c: DaemonConfig, logger: Logger, registry: PrometheusCollectorRegistry, metrics: DaemonMetrics
    ) async throws {
        guard let of = c.replicaOf, let keySpec = c.replicaKey else { return }
        let verifier = try Self.replicaVerifier(keySpec)
        let ledger = try c.openLedger { try Ledger(following: c.data, verifier: verifier, options: c.ledgerOptions) }
        let bucket: S3Backend
        do {
            bucket = try S3Backend(try S3Settings(url: of), cache: ArchiveBackends.cache(forData: c.data), check: false)
        } catch { throw ValidationError("replica_of \(of): \(error)") }
        let follower = try Follower(ledger: ledger, bucket: bucket)
        let tokensPath = TokenStore.path(forData: c.data)
        follower.observe = { [ledger] records in
            let logged = try records.filter(Self.mayChangeTokens).map { try ledger.entry(seq: $0.seq) }
            if !logged.isEmpty { try TokenStore.apply(logged: logged, path: tokensPath) }
        }
        let tokens = Self.tokenStore(data: c.data, ledger: ledger, logger: logger)
        let health = HealthState()
        let replica = ReplicaState()
        let publication = Publication(ledger: ledger, replicator: nil, wait: .seconds(c.replicationWait))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let (queryPool, exportPool) = Self.readPools()
        var port = ReadPort(
            ledger: ledger, publication: publication, tokens: tokens, registry: registry, metrics: metrics,
            health: health, logger: logger, queries: queryPool, exports: exportPool, witnessing: nil)
        port.replica = replica
        port.replicaPrimary = c.replicaPrimary.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        let idem = IdempotencyCache(window: 0, maxKeys: 1) { _ in nil }
        let services: [any Service] = [
            LedgerService(ledger: ledger, idempotency: idem, logger: logger),
            FollowService(
                follower: follower, state: replica, interval: .milliseconds(max(100, c.tailIntervalMs / 2)),
                logger: logger),
            Self.readPortApplication(c, port: port, group: group, logger: logger),
            VerificationService(
                ledger: ledger, interval: .seconds(max(1, c.verifyInterval)), metrics: metrics, health: health,
                logger: logger),
        ]
        let serviceGroup = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        announce("auditd: read replica of \(of), data \(c.data), verifier key \(verifier.text) (no ingest, no signing)")
        do { try await serviceGroup.run() } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
        try? await queryPool.shutdownGracefully()
        try? await exportPool.shutdownGracefully()
        announce("auditd: stopped cleanly")
    }

    /// The followed log's key: its text, or a file holding it.
    static func replicaVerifier(_ spec: String) throws -> LogKeys {
        var text = spec
        if FileOps.exists(spec) {
            guard let bytes = try FileOps.readFile(spec, limit: 4096) else {
                throw ValidationError("replica_key \(spec) cannot be read")
            }
            text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        do { return LogKeys(try NoteVerifier(text)) } catch {
            throw ValidationError(
                "replica_key '\(spec.prefix(80))' is not a verifier key (origin+hash+key), nor a file holding one: \(error)"
            )
        }
    }

    /// Whether a record's entry may record a token's creation or revocation (read in full only then).
    static func mayChangeTokens(_ r: StoredRecord) -> Bool {
        r.payload.firstRange(of: Array("\"audit.token.".utf8)) != nil
    }
}

/// How the replica keeps up with the bucket: for `/healthz` and `/metrics`.
final class ReplicaState: @unchecked Sendable {
    private let lock = NSLock()
    private var _failing: String?
    private var _caughtUp: Date?
    private var _taken: UInt64 = 0

    /// Why the last round stopped, or nil when it took everything the bucket held.
    var failing: String? { lock.withLock { _failing } }

    func succeeded(_ r: Follower.Round, startedAt: Date) {
        lock.withLock {
            _failing = nil
            _caughtUp = startedAt
            _taken += r.entries
        }
    }

    func failed(_ why: String) { lock.withLock { _failing = why } }

    /// Seconds since the start of the last round that took everything the bucket held.
    var lagSeconds: Double? { lock.withLock { _caughtUp.map { max(0, Date().timeIntervalSince($0)) } } }

    /// The replica's part of `/healthz`: whether it keeps up, and how far behind the bucket it
    /// may be (seconds since the start of the last round that took everything there).
    var json: [String: Any] {
        lock.withLock {
            var j: [String: Any] = ["entries_taken": _taken]
            if let t = _caughtUp { j["lag_seconds"] = max(0, Date().timeIntervalSince(t)) }
            if let f = _failing { j["failing"] = f }
            return j
        }
    }
}

/// Runs the follower's rounds, one every `interval`, on a thread of its own (each round blocks
/// on the store and on fdatasync). A round that fails is retried at the next; the reason is
/// logged once per change and shown by `/healthz`.
struct FollowService: Service {
    let follower: Follower
    let state: ReplicaState
    let interval: Duration
    let logger: Logger

    func run() async throws {
        // One thread for the service's life (`onBackgroundThread`), not one per round.
        let said = SaidOnce()
        await onBackgroundThread(every: interval, name: "auditd-follow", nice: 0) { _ in
            let started = Date()
            do {
                let r = try follower.round()
                state.succeeded(r, startedAt: started)
                if said.change(to: nil) {
                    logger.notice("the replica follows the bucket again", metadata: ["size": "\(follower.ledger.size)"])
                }
            } catch {
                let why = "\(error)"
                state.failed(why)
                if said.change(to: why) {
                    logger.error(
                        "the replica cannot take what the bucket holds; it serves what it verified and retries",
                        metadata: ["error": "\(why)", "size": "\(follower.ledger.size)"])
                }
            }
        }
    }
}

/// The reason last logged, so that each change is logged once (the follow thread's alone).
final class SaidOnce: @unchecked Sendable {
    private var said: String?
    /// Records `why` (nil: the round succeeded); true when it differs from the one before.
    func change(to why: String?) -> Bool {
        defer { said = why }
        return why != said
    }
}
