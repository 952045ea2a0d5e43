import AuditBase
import Archive
import AuditAccess
import ArgumentParser
import ChainIndex
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import SegmentStore
import ServiceLifecycle

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
            127.0.0.1:8650. A JSON --config file may set any option by its snake_case name
            (e.g. "http_port"); flags override it. Sealed segments older than the hot window
            (90 days) move to ./auditd-archive as verifiable bundles. SIGTERM or SIGINT: stop accepting, acknowledge
            what is in flight, sign a final checkpoint, exit 0.
            """)

    @Option(help: "JSON config file.") var config: String?
    @Flag(help: "Check the configuration (the file, then the flags over it) and exit: 0 when it is valid.") var checkConfig = false
    @Option(help: "Data directory.") var data: String?
    @Option(help: "Signing key path (created if missing).") var key: String?
    @Option(help: "Checkpoint origin / key name when the key is created.") var origin: String?
    @Option(help: "Ingest socket path.") var socket: String?
    @Option(help: "Ingest socket mode, octal.") var socketMode: String?
    @Option(help: "Allowed writer uids, comma-separated (default: this process's uid).") var allowUids: String?
    @Option(help: "Allowed writer gids, comma-separated (default: this process's gid).") var allowGids: String?
    @Option(help: "Read port host.") var httpHost: String?
    @Option(help: "Read port (0: any free port).") var httpPort: Int?
    @Option(help: "Idempotency window, seconds.") var idempotencyWindow: Int?
    @Option(help: "Seal segments at this many bytes.") var segmentBytes: Int?
    @Option(help: "Seal segments at this age, seconds.") var segmentAge: Int?
    @Option(help: "Seconds between verification passes.") var verifyInterval: Int?
    @Option(help: "Seconds between full rechecks of everything already verified.") var recheckInterval: Int?
    @Option(help: "Disk bandwidth a full recheck may use, MiB/s.") var recheckRate: Int?
    @Option(help: "Seconds a writer connection may stay idle or stalled before it is closed.") var idleTimeout: Int?
    @Option(help: "Writer connections served at once.") var maxConnections: Int?
    @Option(help: "Read-port connections served at once (more wait until one closes).") var httpMaxConnections: Int?
    @Option(help: "Seconds a read-port connection may stay idle, or sit on an unfinished request, before it is closed.") var httpIdleTimeout: Int?
    @Option(help: "Log level.") var logLevel: String?
    @Option(help: "The archive: a directory, or s3://BUCKET[/PREFIX] with Object Lock (credentials and endpoint from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3, AUDITLOG_S3_PATH_STYLE=1, or AUDITLOG_S3_CREDENTIALS=FILE).") var archive: String?
    @Option(help: "Hot window, seconds: older sealed segments move to the archive.") var hotWindow: Int?
    @Option(help: "Seconds between archiver passes.") var archiveInterval: Int?
    @Option(help: "Seconds a restored segment stays hot before it may be archived again.") var restorePin: Int?
    @Option(help: "A witness that cosigns checkpoints, \"URL VKEY\" (repeatable; C2SP tlog-witness).") var witness: [String] = []
    @Option(help: "Cosignatures a checkpoint needs to count as witnessed (default: every witness).") var witnessQuorum: Int?

    func resolved() throws -> DaemonConfig {
        var c = try config.map(DaemonConfig.load) ?? DaemonConfig()
        if let data { c.data = data }
        if let key { c.key = key }
        if let origin { c.origin = origin }
        if let socket { c.socket = socket }
        if let socketMode { c.socketMode = socketMode }
        func ids(_ s: String) throws -> [UInt32] {
            try s.split(separator: ",").map { guard let v = UInt32($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("'\($0)' is not a numeric id") }; return v }
        }
        if let allowUids { c.allowUids = try ids(allowUids) }
        if let allowGids { c.allowGids = try ids(allowGids) }
        if let httpHost { c.httpHost = httpHost }
        if let httpPort { c.httpPort = httpPort }
        if let idempotencyWindow { c.idempotencyWindow = idempotencyWindow }
        if let segmentBytes { c.segmentBytes = segmentBytes }
        if let segmentAge { c.segmentAge = segmentAge }
        if let verifyInterval { c.verifyInterval = verifyInterval }
        if let recheckInterval { c.recheckInterval = recheckInterval }
        if let recheckRate { c.recheckRate = recheckRate }
        if let idleTimeout { c.idleTimeout = idleTimeout }
        if let maxConnections { c.maxConnections = maxConnections }
        if let httpMaxConnections { c.httpMaxConnections = httpMaxConnections }
        if let httpIdleTimeout { c.httpIdleTimeout = httpIdleTimeout }
        if let logLevel { c.logLevel = logLevel }
        if let archive { c.archive = archive }
        if let hotWindow { c.hotWindow = hotWindow }
        if let archiveInterval { c.archiveInterval = archiveInterval }
        if let restorePin { c.restorePin = restorePin }
        if !witness.isEmpty { c.witnesses = witness }
        if let witnessQuorum { c.witnessQuorum = witnessQuorum }
        try c.validate()
        return c
    }

    func run() async throws {
        // A peer or a reader of our output that goes away must not kill the daemon.
        signal(SIGPIPE, SIG_IGN)
        if checkConfig {
            let c = try resolved()
            try DescriptorBudget.check(ingest: c.maxConnections, read: c.httpMaxConnections)
            announce("config OK: data \(c.data), key \(c.keyPath), socket \(c.socket) (mode \(c.socketMode)), read port \(c.httpHost):\(c.httpPort), archive \(c.archivePath), \(c.witnesses.count) witness(es)")
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

        let (signer, created) = try KeyFile.loadOrCreate(path: c.keyPath, name: c.origin)
        if created { logger.notice("generated signing key", metadata: ["path": "\(c.keyPath)", "verifier_key": "\(signer.verifier.text)"]) }
        var options = LedgerOptions()
        options.signerState = SignerState.path(forKey: c.keyPath)
        options.onCommit = { n, d in metrics.committed(count: n, took: d) }
        options.store.rotateBytes = c.segmentBytes
        options.store.rotateAge = .seconds(c.segmentAge)
        let ledger: Ledger
        do { ledger = try Ledger(directory: c.data, signer: signer, options: options) } catch let e as StoreError where e.code == .locked {
            throw ValidationError("\(c.data) is in use by another process (another auditd, or auditctl import)")
        }
        logger.info("log opened", metadata: ["data": "\(c.data)", "size": "\(ledger.size)", "recovery": "\(ledger.recovery)", "verifier_key": "\(ledger.verifier.text)"])

        let tree = ledger.tree
        let idem = IdempotencyCache(window: TimeInterval(c.idempotencyWindow), maxKeys: c.maxIdempotencyKeys) { seq in try? tree.leaf(seq) }
        // Re-read the window's keys in the background: entries without a key are served at once,
        // keyed ones wait until it is done.
        Thread {
            let started = ContinuousClock.now
            do {
                let seeded = try idem.rebuild(from: ledger)
                logger.info("idempotency keys restored", metadata: ["keys": "\(seeded)", "took": "\(ContinuousClock.now - started)"])
            } catch {
                logger.error("could not re-read idempotency keys; duplicates of entries sent before the restart are possible", metadata: ["error": "\(error)"])
            }
            idem.markReady()
        }.start()

        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let health = HealthState()
        let witnessing = c.witnesses.isEmpty ? nil : try Witnessing(ledger: ledger, witnesses: c.witnesses, quorum: c.witnessQuorum)
        let shared = IngestContext(ledger: ledger, idempotency: idem, metrics: metrics, maxInflight: c.maxInflightPerConnection,
                                   logger: logger, drain: InflightCounter(limit: c.maxInflightTotal), witnessing: witnessing)
        let ingest = IngestServer(config: c, shared: shared, group: group) { path in
            announce("auditd: ingest socket \(path)")
        }
        // A token opens the read port only if it stands on its audit entry in this log's tree
        // (format-spec.md §1): one written into tokens.json by hand never does.
        let tokens = TokenStore(path: TokenStore.path(forData: c.data),
                                admit: { [ledger] r in r.auditProblem(leaf: { try ledger.tree.leaf($0) }, size: ledger.size) },
                                log: { [logger] in logger.warning("\($0)") })
        // Twice the cores: each token may hold two of these at once (TokenGate), so one busy
        // token never has them all.
        let queryPool = NIOThreadPool(numberOfThreads: max(4, 2 * System.coreCount))
        let exportPool = NIOThreadPool(numberOfThreads: 1)
        queryPool.start()
        exportPool.start()
        let port = ReadPort(ledger: ledger, tokens: tokens, registry: registry, metrics: metrics, health: health, logger: logger,
                            queries: queryPool, exports: exportPool, witnessing: witnessing)
        let app = Application(
            router: port.router(),
            // Bounded: idle and half-sent requests are closed, and connections past the cap
            // wait in the backlog, so readers can never take the descriptors storage needs.
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(c.httpIdleTimeout)))),
            configuration: .init(address: .hostname(c.httpHost, port: c.httpPort), serverName: "auditd",
                                 availableConnectionsDelegate: MaximumAvailableConnections(c.httpMaxConnections)),
            onServerRunning: { channel in
                let p = channel.localAddress?.port ?? c.httpPort
                announce("auditd: read port http://\(c.httpHost):\(p)")
            },
            eventLoopGroupProvider: .shared(group),
            logger: logger)
        // A bucket without Object Lock or versioning, or refused credentials, stop the start with
        // the reason; an unreachable store does not (ingest goes on, /healthz says degraded, and
        // each archiver pass checks again).
        let backend: ArchiveBackend
        do { backend = try ArchiveBackends.open(c.archivePath, dataDir: c.data) } catch let e as S3Error where e.status == 0 {
            logger.error("the archive store cannot be reached; archiving waits for it", metadata: ["error": "\(e)"])
            health.failArchive(e.message)
            backend = try ArchiveBackends.open(c.archivePath, dataDir: c.data, check: false)
        } catch {
            throw ValidationError("archive \(c.archivePath): \(error)")
        }
        let archiverCore = Archiver(ledger: ledger, backend: backend)
        archiverCore.restorePin = TimeInterval(c.restorePin)
        let archiver = ArchiverService(
            archiver: archiverCore,
            hotWindow: TimeInterval(c.hotWindow), interval: .seconds(max(1, c.archiveInterval)), health: health, logger: logger)
        let verifier = VerificationService(ledger: ledger, interval: .seconds(max(1, c.verifyInterval)), metrics: metrics, health: health, logger: logger)
        let recheck = RecheckService(ledger: ledger, interval: .seconds(max(1, c.recheckInterval)), bytesPerSecond: Double(max(1, c.recheckRate)) * 1_048_576,
                                     metrics: metrics, health: health, logger: logger)
        // Shut down in reverse order: verifier, read port, ingest (drains acks), then the ledger.
        var services: [any Service] = [LedgerService(ledger: ledger, idempotency: idem, logger: logger), ingest, app, archiver, verifier, recheck]
        if let witnessing { services.append(WitnessService(witnessing: witnessing, ledger: ledger, interval: .seconds(1), logger: logger)) }
        let serviceGroup = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        announce("auditd: data \(c.data), verifier key \(ledger.verifier.text)")
        do {
            try await serviceGroup.run()
        } catch {
            try? await group.shutdownGracefully()
            if "\(error)".contains("Address already in use") {
                throw ValidationError("the read port \(c.httpHost):\(c.httpPort) is in use by another process; stop it or choose another with --http-port")
            }
            throw error
        }
        try? await group.shutdownGracefully()
        try? await queryPool.shutdownGracefully()
        try? await exportPool.shutdownGracefully()
        announce("auditd: stopped cleanly")
    }
}

/// One line on standard output, unbuffered (scripts and tests wait for these lines). A reader
/// that went away (`auditd | head -n1`) costs the line, never the daemon: SIGPIPE is ignored
/// at start, and the throwing write's error is dropped.
func announce(_ s: String) {
    try? FileHandle.standardOutput.write(contentsOf: Data((s + "\n").utf8))
}
