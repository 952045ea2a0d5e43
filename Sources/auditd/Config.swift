import Archive
import ArgumentParser
import AuditBase
import AuditEntries
import ChainIndex
import Foundation
import LogProofs
import Replication
import Witness

#if canImport(Glibc)
import Glibc
#endif

/// Every setting of the daemon, with its embedded default. `settings` below names each one
/// once: a JSON config file (`--config`) may set it by its key, a flag overrides the file.
struct DaemonConfig: Sendable {
    // What each one means, its key, flag and range: `settings` below.
    var data = "./auditd-data"
    var key: String?
    var origin = "auditd.local/log"
    var socket = "./auditd.sock"
    var socketMode = "0660"
    var allowUids: [UInt32] = [getuid()]
    var allowGids: [UInt32] = [getgid()]
    var httpHost = "127.0.0.1"
    var httpPort = 8650
    var idempotencyWindow = 900
    var maxIdempotencyKeys = 500_000
    var segmentBytes = 32 << 20
    var segmentAge = 600
    var sealLevel = Int(LedgerOptions().store.sealLevel)
    var maxInflightPerConnection = 4096
    var verifyInterval = 30
    var recheckInterval = 86400
    var recheckRate = 32
    var idleTimeout = 300
    var maxConnections = 512
    var httpMaxConnections = 1024
    var httpIdleTimeout = 30
    var maxInflightTotal = 65536
    var logLevel = "info"
    var archive: String?
    var hotWindow = 90 * 86400
    var archiveInterval = 3600
    var restorePin = 7 * 86400
    var witnesses: [String] = []
    var witnessQuorum: Int?
    var witnessInterval = 180
    var timestampAuthorities: [String] = []
    var timestampTrust: String?
    var timestampInterval = 600
    var ack = "local"
    var tailIntervalMs = 1000
    var tailEntries = 8192
    var tailLock = 86400
    var replicationWait = 10
    var replicaOf: String?
    var replicaKey: String?
    var replicaPrimary: String?
    var personalFields: String?

    /// True when the archive is a bucket: then the log replicates into it continuously.
    var replicates: Bool { archivePath.hasPrefix("s3://") }

    var archivePath: String { archive ?? LocalDirectoryBackend.defaultRoot(forData: data) }

    var keyPath: String { key ?? DataDirectory(data).defaultKey }

    /// The ledger's options these settings give (the primary adds its signer state and metrics).
    var ledgerOptions: LedgerOptions {
        var o = LedgerOptions()
        o.retired = ArchiveTier()
        // The ticker and the sealer run in LedgerService, inside the daemon's service group.
        o.background = false
        o.store.rotateBytes = segmentBytes
        o.store.rotateAge = .seconds(segmentAge)
        o.store.sealLevel = Int32(sealLevel)
        o.protectPersonalFields = personalFields.map { $0 == "commit" }
        return o
    }

    /// Opens the ledger with `open`, saying so when another process holds the data directory.
    func openLedger(_ open: () throws -> Ledger) throws -> Ledger {
        do { return try open() } catch let e as AuditError where e.code == .locked {
            throw DaemonError(
                "\(data) is in use by another process (another auditd, or auditctl); stop it, or use another --data")
        }
    }

    static func load(_ path: String) throws -> DaemonConfig {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read config file \(path)")
        }
        guard let object = try? JSONDecoder().decode([String: JSONValue].self, from: d) else {
            throw ValidationError("config file \(path) is not a JSON object")
        }
        let byKey = Dictionary(uniqueKeysWithValues: settings.map { ($0.key, $0) })
        var c = DaemonConfig()
        // A misspelt setting would otherwise be ignored without a word.
        for (k, v) in object.sorted(by: { $0.key < $1.key }) {
            guard let setting = byKey[k] else {
                throw ValidationError(
                    "config file \(path): unknown setting \"\(k)\" (the settings are: \(settings.map(\.key).sorted().joined(separator: ", ")))"
                )
            }
            try setting.apply(json: v, to: &c, file: path)
        }
        return c
    }

    /// Checks values no type can: ranges, the witnesses, the socket mode, the log level.
    func validate() throws {
        func need(_ ok: Bool, _ m: String) throws { if !ok { throw ValidationError(m) } }
        try need(mode_t(socketMode, radix: 8) != nil, "socket_mode '\(socketMode)' is not octal")
        try need(
            ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel),
            "log_level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        for setting in Self.settings { try setting.validate(self) }
        var endpoints: [WitnessEndpoint] = []
        for w in witnesses {
            do { endpoints.append(try WitnessEndpoint(w)) } catch { throw ValidationError("witnesses: \(error)") }
        }
        do { try CosignatureVerifier.distinct(endpoints.map(\.verifier)) } catch {
            throw ValidationError("witnesses: \(error.description)")
        }
        if let url = Dictionary(grouping: endpoints, by: \.url).first(where: { $0.value.count > 1 })?.key {
            throw ValidationError("witnesses: \(url) is listed twice; list each witness once")
        }
        if let q = witnessQuorum {
            try need(
                q >= 1 && q <= witnesses.count,
                "witness_quorum \(q) must be between 1 and the \(witnesses.count) witnesses")
        }
        for t in timestampAuthorities {
            guard let u = URL(string: t), u.scheme == "http" || u.scheme == "https", u.host != nil else {
                throw ValidationError(
                    "timestamp_authorities: '\(t.prefix(200))' is not an http:// or https:// URL of an RFC 3161 authority"
                )
            }
        }
        try need(
            Set(timestampAuthorities).count == timestampAuthorities.count,
            "timestamp_authorities: an authority is listed twice; list each once")
        try need(
            timestampAuthorities.isEmpty || timestampTrust != nil,
            "timestamp_authorities needs timestamp_trust: the PEM file of the certificates that sign their tokens (the authority's own or its CA's); a token the daemon cannot check is never recorded"
        )
        try need(!data.isEmpty, "data is empty")
        try need(
            AckMode(rawValue: ack) != nil,
            "ack '\(ack)' is not one of \(AckMode.allCases.map(\.rawValue).joined(separator: ", "))")
        try need(
            personalFields.map { ["commit", "clear"].contains($0) } ?? true,
            "personal_fields '\(personalFields ?? "")' is not one of commit, clear")
        try need(
            ack == "local" || replicates,
            "ack replicated needs an object store to replicate into: set archive to s3://BUCKET[/PREFIX]")
        if let p = replicaPrimary {
            try need(replicaOf != nil, "replica_primary is only for a read replica: set replica_of too")
            try need(
                p.hasPrefix("http://") || p.hasPrefix("https://"),
                "replica_primary '\(p)' is not http://HOST:PORT (the primary's read port)")
        }
        if let of = replicaOf {
            try need(
                of.hasPrefix("s3://"), "replica_of '\(of)' is not s3://BUCKET[/PREFIX]: a replica follows a bucket")
            try need(
                replicaKey != nil,
                "replica_of needs replica_key: the verifier key of the log it follows (the primary prints it at start; `auditctl key DATA` prints it), or a file holding it"
            )
        }
    }
}

extension DaemonConfig {
    /// The settings, each named once. Ranges: 0 means something for the port (any free one),
    /// the hot window (archive at once), the pin (none) and the idempotency window (none).
    static let settings: [Setting] = [
        Setting("data", .text(\.data), "Data directory."),
        Setting(
            "key", .optionalText(\.key),
            "Signing key path, created if missing (default <parent of data>/auditd-keys/<data name>.key)."),
        Setting("origin", .text(\.origin), "Checkpoint origin and key name, used when the key is created."),
        Setting("socket", .text(\.socket), "Ingest socket path."),
        Setting("socket_mode", .text(\.socketMode), "Ingest socket mode, octal."),
        Setting(
            "allow_uids", .ids(\.allowUids),
            "Peer uids allowed to write (default: this process's uid; empty with allow_gids empty: anyone who can open the socket)."
        ),
        Setting("allow_gids", .ids(\.allowGids), "Peer gids allowed to write (default: this process's gid)."),
        Setting("http_host", .text(\.httpHost), "Read port host."),
        Setting("http_port", .number(\.httpPort, 0...65535), "Read port (0: any free port, printed at start)."),
        Setting(
            "http_max_connections", .number(\.httpMaxConnections, 1...Int.max),
            "Read-port connections served at once; more wait in the kernel's backlog until one closes."),
        Setting(
            "http_idle_timeout", .number(\.httpIdleTimeout, 1...Int.max),
            "Seconds a read-port connection may stay idle, or sit on an unfinished request, before it is closed."),
        Setting(
            "idempotency_window", .number(\.idempotencyWindow, 0...Int.max),
            "Seconds an idempotency key is remembered (across restarts too)."),
        Setting(
            "max_idempotency_keys", .number(\.maxIdempotencyKeys, 1...Int.max),
            "Most idempotency keys remembered (about 100 bytes each: 48 MiB by default); past it the oldest go first, so above max_idempotency_keys / idempotency_window keyed entries a second the window is that much shorter."
        ),
        Setting(
            "segment_bytes", .number(\.segmentBytes, 4096...Int.max),
            "Rotate and seal the open segment at this many bytes."),
        Setting(
            "segment_age", .number(\.segmentAge, 1...Int.max), "Rotate and seal the open segment at this age, seconds."),
        Setting(
            "seal_level", .number(\.sealLevel, 1...19),
            "zstd level of sealed segments: higher levels keep fewer bytes for more CPU at each seal, which on a busy machine is taken from ingest."
        ),
        Setting(
            "max_inflight_per_connection", .number(\.maxInflightPerConnection, 1...Int.max),
            "Unacknowledged entries a connection may have before the daemon stops reading from it."),
        Setting(
            "max_inflight_total", .number(\.maxInflightTotal, 1...Int.max),
            "Unacknowledged entries across all connections; beyond it reading pauses until half are acknowledged."),
        Setting(
            "max_connections", .number(\.maxConnections, 1...Int.max),
            "Writer connections served at once; one more is told so and closed."),
        Setting(
            "idle_timeout", .number(\.idleTimeout, 1...Int.max),
            "Seconds a writer connection may stay idle or stalled mid-frame before it is closed."),
        Setting(
            "verify_interval", .number(\.verifyInterval, 1...Int.max),
            "Seconds between verification passes (newly sealed segments and checkpoints)."),
        Setting(
            "recheck_interval", .number(\.recheckInterval, 1...Int.max),
            "Seconds between the starts of full rechecks of everything already verified."),
        Setting("recheck_rate", .number(\.recheckRate, 1...Int.max), "Disk bandwidth a full recheck may use, MiB/s."),
        Setting("log_level", .text(\.logLevel), "Log level: trace, debug, info, notice, warning, error, critical."),
        Setting(
            "archive", .optionalText(\.archive),
            "The archive: a directory (default <parent of data>/auditd-archive), or s3://BUCKET[/PREFIX] with Object Lock (credentials and endpoint from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3, AUDITLOG_S3_PATH_STYLE=1, or AUDITLOG_S3_CREDENTIALS=FILE)."
        ),
        Setting(
            "hot_window", .number(\.hotWindow, 0...Int.max),
            "Seconds: sealed segments whose newest entry is older move to the archive."),
        Setting("archive_interval", .number(\.archiveInterval, 1...Int.max), "Seconds between archiver passes."),
        Setting(
            "restore_pin", .number(\.restorePin, 0...Int.max),
            "Seconds a restored segment stays hot before it may be archived again."),
        Setting(
            "witnesses", flag: "witness", .texts(\.witnesses),
            "A witness that cosigns checkpoints, \"URL VKEY\" (C2SP tlog-witness)."),
        Setting(
            "witness_quorum", .optionalNumber(\.witnessQuorum, 1...Int.max),
            "Cosignatures a checkpoint needs to count as witnessed (default: every witness)."),
        Setting(
            "witness_interval", .number(\.witnessInterval, 1...86_400),
            "Seconds between posts of the newest checkpoint to the witnesses (and retries of those that failed); public witnesses ask a log for about one every few minutes. An export still has its own checkpoint cosigned at once."
        ),
        Setting(
            "timestamp_authorities", flag: "timestamp-authority", .texts(\.timestampAuthorities),
            "An RFC 3161 time-stamping authority's URL: every timestamp_interval it is asked for a token over the newest checkpoint, recorded in the log and carried by exports (format-spec.md §8.7)."
        ),
        Setting(
            "timestamp_trust", .optionalText(\.timestampTrust),
            "PEM file of the certificates that sign the authorities' tokens (each authority's own, or its CA's); a token that does not verify against it is refused."
        ),
        Setting(
            "timestamp_interval", .number(\.timestampInterval, 1...86_400),
            "Seconds between time-stamps of the newest checkpoint (only when the log grew). An authority that is down never holds up ingest: /healthz says degraded."
        ),
        Setting(
            "personal_fields", .optionalText(\.personalFields),
            "commit: personal fields (human actors and targets, source.ip, user_agent, metadata a writer lists in `personal`) are stored from now on as blinded commitments, their values in DATA/personal, erasable with `auditctl erase`; clear: stored as sent, never erasable. Recorded in DATA/log.json; unset, the log keeps what it records (clear for a new log)."
        ),
        Setting(
            "ack", .text(\.ack),
            "When a writer gets its ack: local (after the fdatasync; with an s3:// archive the bucket follows within tail_interval_ms) or replicated (once the bucket holds the entry too; needs an s3:// archive)."
        ),
        Setting(
            "tail_interval_ms", .number(\.tailIntervalMs, 10...3_600_000),
            "With an s3:// archive: the longest a durable entry waits before it is put into the bucket, milliseconds."),
        Setting(
            "tail_entries", .number(\.tailEntries, 1...Int.max),
            "With an s3:// archive: put the tail into the bucket as soon as this many entries wait."),
        Setting(
            "tail_lock", .number(\.tailLock, 1...Int.max),
            "Seconds the bucket locks tail and checkpoint objects (COMPLIANCE); removed after that once a bundle holds their entries."
        ),
        Setting(
            "replication_wait", .number(\.replicationWait, 1...Int.max),
            "Seconds a writer waits for the bucket in replicated mode before it is told its entry is not acknowledged; after that long without the store, writes are refused."
        ),
        Setting(
            "replica_of", .optionalText(\.replicaOf),
            "Run as a read replica of the log that replicates into s3://BUCKET[/PREFIX]: no ingest socket, no key; the read port serves what the bucket holds, verified, at most tail_interval_ms behind (see replica_key)."
        ),
        Setting(
            "replica_key", .optionalText(\.replicaKey),
            "With replica_of: the verifier key of the log it follows (text such as origin+hash+key, or a file holding it); every object is checked against it."
        ),
        Setting(
            "replica_primary", .optionalText(\.replicaPrimary),
            "With replica_of: the primary's read port (http://HOST:PORT), which records each export in the org's log; the replica then serves the export itself. Without it, a replica refuses exports."
        ),
    ]
}
