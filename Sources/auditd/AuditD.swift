import Archive
import ArgumentParser
import AuditAccess
import AuditBase
import ChainIndex
import Foundation
import Hummingbird
import HummingbirdCore
import LogProofs
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import Replication
import SegmentStore
import ServiceLifecycle
import TimeStamping

/// The audit log daemon: ingest over a Unix socket, the read port over HTTP, background
/// sealing, checkpointing and verification. Thin: it wires the libraries together.
@main
struct AuditD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auditd",
        abstract: "Tamper-evident, append-only audit log daemon.",
        discussion: """
            With no arguments it runs on embedded defaults: data in ./auditd-data, a signing key
            generated on first start at ./auditd-keys/auditd-data.key (mode 0600), the ingest
            socket ./auditd.sock (mode 0660, this user and group may write), and the read port on
            127.0.0.1:8650. A JSON --config file may set any setting by its key (e.g. "http_port");
            flags override it. Sealed segments older than the hot window (90 days) move to
            ./auditd-archive as verifiable bundles; with an s3:// archive the log also follows
            itself into the bucket continuously (bundles at seal, the tail every second; see --ack).
            SIGTERM or SIGINT: stop accepting, acknowledge
            what is in flight, sign a final checkpoint, exit 0.

            SETTINGS (flag, [config key; default]):
            """ + "\n" + DaemonConfig.settings.map(\.helpLine).joined(separator: "\n"))

    @Option(help: "JSON config file.") var config: String?
    @Flag(help: "Check the configuration (the file, then the flags over it) and exit: 0 when it is valid.")
    var checkConfig = false
    /// Every other flag is a setting from `DaemonConfig.settings` (see the discussion above).
    @Argument(parsing: .allUnrecognized, help: .hidden) var settings: [String] = []

    func resolved() throws -> DaemonConfig {
        var c = try config.map(DaemonConfig.load) ?? DaemonConfig()
        for (setting, values) in try SettingFlags.parse(settings) { try setting.apply(flag: values, to: &c) }
        try c.validate()
        return c
    }

    func run() async throws {
        // A peer or a reader of our output that goes away must not kill the daemon.
        signal(SIGPIPE, SIG_IGN)
        if checkConfig {
            let c = try resolved()
            try DescriptorBudget.check(ingest: c.maxConnections, read: c.httpMaxConnections)
            announce(
                "config OK: data \(c.data), key \(c.keyPath), socket \(c.socket) (mode \(c.socketMode)), read port \(c.httpHost):\(c.httpPort), archive \(c.archivePath), \(c.witnesses.count) witness(es)"
            )
            for setting in DaemonConfig.settings { announce("  \(setting.key) = \(setting.shown(c))") }
            return
        }
        let c = try resolved()
        try DescriptorBudget.check(ingest: c.maxConnections, read: c.httpMaxConnections)
        let level = Logger.Level(rawValue: c.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "auditd")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let metrics = DaemonMetrics()
        if c.replicaOf != nil {
            try await runReplica(c, logger: logger, registry: registry, metrics: metrics)
            return
        }

        let (signer, created, keyNote) = try Ledger.signingKey(at: c.keyPath, directory: c.data, createNamed: c.origin)
        if let keyNote { logger.warning("signing key", metadata: ["what": "\(keyNote)"]) }
        if created {
            logger.notice(
                "generated signing key", metadata: ["path": "\(c.keyPath)", "verifier_key": "\(signer.verifier.text)"])
        }
        var options = c.ledgerOptions
        options.signerState = SignerState.path(forKey: c.keyPath)
        options.onCommit = { n, d in metrics.committed(count: n, took: d) }
        options.onSealerWait = { d, here in metrics.heldForSealer(d, sealedHere: here) }
        let ledger = try c.openLedger { try Ledger(directory: c.data, signer: signer, options: options) }
        logger.info(
            "log opened",
            metadata: [
                "data": "\(c.data)", "size": "\(ledger.size)", "recovery": "\(ledger.recovery)",
                "verifier_key": "\(ledger.verifier.text)",
            ])

        let idem = IdempotencyCache(window: TimeInterval(c.idempotencyWindow), maxKeys: c.maxIdempotencyKeys) {
            [ledger] seq in try? ledger.leaf(seq)
        }
        // Re-read the window's keys in the background: entries without a key are served at once,
        // keyed ones wait until it is done.
        Thread {
            let started = ContinuousClock.now
            do {
                let seeded = try idem.rebuild(from: ledger)
                logger.info(
                    "idempotency keys restored",
                    metadata: ["keys": "\(seeded)", "took": "\(ContinuousClock.now - started)"])
            } catch {
                logger.error(
                    "could not re-read idempotency keys; duplicates of entries sent before the restart are possible",
                    metadata: ["error": "\(error)"])
            }
            idem.markReady()
        }.start()

        let health = HealthState()
        // A bucket without Object Lock or versioning, or refused credentials, stop the start with
        // the reason; an unreachable store does not (ingest goes on, /healthz says degraded, and
        // each archiver pass checks again).
        let backend: ArchiveBackend
        do { backend = try ArchiveBackends.open(c.archivePath, dataDir: c.data) } catch let e as S3Error
            where e.status == 0
        {
            logger.error("the archive store cannot be reached; archiving waits for it", metadata: ["error": "\(e)"])
            health.failArchive(e.message)
            backend = try ArchiveBackends.open(c.archivePath, dataDir: c.data, check: false)
        } catch {
            // The store's state or its credentials, not the command line: exit 1, no usage text.
            throw DaemonError("archive \(c.archivePath): \(error)")
        }
        let archiverCore = Archiver(ledger: ledger, backend: backend)
        archiverCore.restorePin = TimeInterval(c.restorePin)
        // With a bucket, the log follows itself into it continuously (format-spec.md §12.6).
        var replicator: Replicator?
        if let s3 = backend as? S3Backend {
            var ro = ReplicationOptions()
            ro.interval = .milliseconds(c.tailIntervalMs)
            ro.maxEntries = UInt64(c.tailEntries)
            ro.tailLock = TimeInterval(c.tailLock)
            ro.onTailPut = { d, _ in metrics.replicationPut.recordNanoseconds(DaemonMetrics.nanoseconds(d)) }
            replicator = Replicator(ledger: ledger, archiver: archiverCore, bucket: s3, options: ro)
        }
        let publication = Publication(ledger: ledger, replicator: replicator, wait: .seconds(c.replicationWait))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let witnessing =
            c.witnesses.isEmpty ? nil : try Witnessing(ledger: ledger, witnesses: c.witnesses, quorum: c.witnessQuorum)
        let shared = IngestContext(
            ledger: ledger, idempotency: idem, metrics: metrics, maxInflight: c.maxInflightPerConnection,
            logger: logger, drain: InflightCounter(limit: c.maxInflightTotal), witnessing: witnessing,
            publication: publication, ackMode: AckMode(rawValue: c.ack) ?? .local,
            replicationWait: .seconds(c.replicationWait), keyPath: c.keyPath)
        let ingest = IngestServer(config: c, shared: shared, group: group) { path in
            announce("auditd: ingest socket \(path)")
        }
        let tokens = Self.tokenStore(data: c.data, ledger: ledger, logger: logger)
        let (queryPool, exportPool) = Self.readPools()
        var port = ReadPort(
            ledger: ledger, publication: publication, tokens: tokens, registry: registry, metrics: metrics,
            health: health, logger: logger,
            queries: queryPool, exports: exportPool, witnessing: witnessing)
        // Tokens are indexed (and carried by exports) once the log records any, authorities or
        // not; the index follows the entries (a recovered log or a replica makes it again).
        let stampsPath = DataDirectory(c.data).timestamps
        var timestamps: TimeStampJournal?
        if !c.timestampAuthorities.isEmpty || ledger.isFollower || FileOps.exists(stampsPath)
            || TimeStampRecords.any(ledger)
        {
            let j = try TimeStampJournal(path: stampsPath)
            try TimeStampRecords.catchUp(j, ledger: ledger)
            timestamps = j
        }
        var timestamper: TimeStamper?
        if let timestamps, let trust = c.timestampTrust, !c.timestampAuthorities.isEmpty {
            timestamper = try TimeStamper(
                ledger: ledger, authorities: c.timestampAuthorities, trustFile: trust, journal: timestamps)
        }
        port.timestamper = timestamper
        port.timestamps = timestamps
        let app = Self.readPortApplication(c, port: port, group: group, logger: logger)
        let archiver = ArchiverService(
            archiver: archiverCore,
            hotWindow: TimeInterval(c.hotWindow), interval: .seconds(max(1, c.archiveInterval)), health: health,
            logger: logger)
        let verifier = VerificationService(
            ledger: ledger, interval: .seconds(max(1, c.verifyInterval)), metrics: metrics, health: health,
            logger: logger)
        let recheck = RecheckService(
            ledger: ledger, interval: .seconds(max(1, c.recheckInterval)),
            bytesPerSecond: Double(max(1, c.recheckRate)) * 1_048_576,
            metrics: metrics, health: health, logger: logger)
        // Shut down in reverse order: verifier, read port, ingest (drains acks), then the ledger.
        // Replication stops after ingest (writers waiting for the bucket are answered first).
        var services: [any Service] = [LedgerService(ledger: ledger, idempotency: idem, logger: logger)]
        if let replicator { services.append(ReplicationService(replicator: replicator, logger: logger)) }
        services += [ingest, app, archiver, verifier, recheck]
        if let witnessing {
            services.append(
                WitnessService(
                    witnessing: witnessing, publication: publication, interval: .seconds(c.witnessInterval),
                    logger: logger))
        }
        if let timestamper {
            services.append(
                TimeStampService(
                    stamper: timestamper, publication: publication, interval: .seconds(c.timestampInterval),
                    logger: logger))
        }
        let serviceGroup = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        announce("auditd: data \(c.data), verifier key \(ledger.verifier.text)")
        if replicator != nil {
            announce(
                "auditd: replicating into \(c.archivePath) (ack \(c.ack); tail every \(c.tailIntervalMs) ms; checkpoints published once the bucket holds their entries)"
            )
        }
        do {
            try await serviceGroup.run()
        } catch {
            try? await group.shutdownGracefully()
            if "\(error)".contains("Address already in use") {
                throw DaemonError(
                    "the read port \(c.httpHost):\(c.httpPort) is in use by another process; stop it or choose another with --http-port"
                )
            }
            throw error
        }
        try? await group.shutdownGracefully()
        try? await queryPool.shutdownGracefully()
        try? await exportPool.shutdownGracefully()
        announce("auditd: stopped cleanly")
    }
}

extension AuditD {
    /// A token opens the read port only if it stands on its audit entry in this log's tree
    /// (format-spec.md §1): one written into tokens.json by hand never does.
    static func tokenStore(data: String, ledger: Ledger, logger: Logger) -> TokenStore {
        TokenStore(
            path: TokenStore.path(forData: data),
            admit: { [ledger] r in r.auditProblem(leaf: { try ledger.leaf($0) }, size: ledger.size) },
            log: { [logger] in logger.warning("\($0)") })
    }

    /// The read port's pools, started: queries and proofs on twice the cores (each token may
    /// hold two of these at once, TokenGate, so one busy token never has them all); exports on
    /// one, so that exports never hold up other readers.
    static func readPools() -> (queries: NIOThreadPool, exports: NIOThreadPool) {
        let queries = NIOThreadPool(numberOfThreads: max(4, 2 * System.coreCount))
        let exports = NIOThreadPool(numberOfThreads: 1)
        queries.start()
        exports.start()
        return (queries, exports)
    }

    /// The read port's HTTP server. Bounded: idle and half-sent requests are closed, and
    /// connections past the cap wait in the backlog, so readers can never take the descriptors
    /// storage needs.
    static func readPortApplication(
        _ c: DaemonConfig, port: ReadPort, group: MultiThreadedEventLoopGroup, logger: Logger
    ) -> some Service {
        Application(
            router: port.router(),
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(c.httpIdleTimeout)))),
            configuration: .init(
                address: .hostname(c.httpHost, port: c.httpPort), serverName: "auditd",
                availableConnectionsDelegate: MaximumAvailableConnections(c.httpMaxConnections)),
            onServerRunning: { channel in
                let p = channel.localAddress?.port ?? c.httpPort
                announce("auditd: read port http://\(c.httpHost):\(p)")
            },
            eventLoopGroupProvider: .shared(group),
            logger: logger)
    }
}

/// One line on standard output, unbuffered (scripts and tests wait for these lines). A reader
/// that went away (`auditd | head -n1`) costs the line, never the daemon: SIGPIPE is ignored
/// at start, and the throwing write's error is dropped.
func announce(_ s: String) {
    try? FileHandle.standardOutput.write(contentsOf: Data((s + "\n").utf8))
}
