import AuditBase
import Archive
import ArgumentParser
import ChainIndex
import Foundation
import Witness
#if canImport(Glibc)
import Glibc
#endif

/// Every setting of the daemon, with its embedded default. A JSON config file (`--config`) may
/// set any of them by the same name; flags override the file.
struct DaemonConfig: Codable, Sendable {
    /// Data directory.
    var data = "./auditd-data"
    /// Signing key path; default `<parent of data>/auditd-keys/<data name>.key`.
    var key: String?
    /// Checkpoint origin and key name, used when the key is created.
    var origin = "auditd.local/log"
    /// Ingest socket path.
    var socket = "./auditd.sock"
    /// Ingest socket mode (octal).
    var socketMode = "0660"
    /// Peer uids allowed to write (empty with `allowGids` empty: anyone who can open the socket).
    var allowUids: [UInt32] = [getuid()]
    /// Peer gids allowed to write.
    var allowGids: [UInt32] = [getgid()]
    /// Read port address.
    var httpHost = "127.0.0.1"
    /// Read port (0: any free port, printed at start).
    var httpPort = 8650
    /// How long an idempotency key is remembered, seconds (across restarts too).
    var idempotencyWindow = 900
    /// Most idempotency keys remembered (about 100 bytes each: 48 MiB by default); past it the
    /// oldest go first, so at more than maxIdempotencyKeys / idempotencyWindow keyed entries a
    /// second the window is that much shorter.
    var maxIdempotencyKeys = 500_000
    /// Rotate and seal the open segment at this many bytes.
    var segmentBytes = 32 << 20
    /// Rotate and seal the open segment at this age, seconds.
    var segmentAge = 600
    /// Unacknowledged entries a connection may have before the daemon stops reading from it.
    var maxInflightPerConnection = 4096
    /// Seconds between continuous verification passes (newly sealed segments and checkpoints).
    var verifyInterval = 30
    /// Seconds between the starts of full rechecks of everything already verified.
    var recheckInterval = 86400
    /// Disk bandwidth a full recheck may use, MiB/s (it paces itself to stay under it).
    var recheckRate = 32
    /// Seconds a writer connection may stay idle (or stalled mid-frame) before it is closed.
    var idleTimeout = 300
    /// Writer connections served at once; one more is told so and closed. With a partial
    /// frame of at most 64 KiB each, this bounds what connections can make the daemon buffer.
    var maxConnections = 512
    /// Read-port connections served at once; past it new ones wait in the kernel's backlog
    /// until one closes. Readers can then never take the descriptors storage needs.
    var httpMaxConnections = 1024
    /// Seconds a read-port connection may stay idle, or sit on a request it has not finished
    /// sending, before it is closed.
    var httpIdleTimeout = 30
    /// Entries accepted but not yet acknowledged, across all connections; beyond it, reading
    /// pauses until half are acknowledged (each holds its canonical bytes meanwhile).
    var maxInflightTotal = 65536
    /// Log level: trace, debug, info, notice, warning, error, critical.
    var logLevel = "info"
    /// Archive directory (default: `<parent of data>/auditd-archive`).
    var archive: String?
    /// Sealed segments whose newest entry is older than this many seconds move to the archive.
    var hotWindow = 90 * 86400
    /// Seconds between archiver passes.
    var archiveInterval = 3600
    /// Seconds a restored segment stays hot before it may be archived again.
    var restorePin = 7 * 86400
    /// Witnesses that cosign checkpoints (C2SP tlog-witness), each "URL VKEY".
    var witnesses: [String] = []
    /// Cosignatures a checkpoint needs to count as witnessed (default: every witness).
    var witnessQuorum: Int?

    var archivePath: String { archive ?? LocalDirectoryBackend.defaultRoot(forData: data) }

    var keyPath: String { key ?? DataDirectory(data).defaultKey }

    static func load(_ path: String) throws -> DaemonConfig {
        guard let d = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read config file \(path)") }
        // A misspelt setting would otherwise be ignored without a word.
        guard let object = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else {
            throw ValidationError("config file \(path) is not a JSON object")
        }
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        for k in object.keys.sorted() where !known.contains(k) {
            throw ValidationError("config file \(path): unknown setting \"\(k)\" (the settings are: \(known.sorted().joined(separator: ", ")))")
        }
        do { return try JSONDecoder().decode(DaemonConfig.self, from: d) } catch {
            throw ValidationError("config file \(path) is not valid: \(error)")
        }
    }

    /// Checks values no type can: ranges, the witnesses, the socket mode, the log level.
    func validate() throws {
        func need(_ ok: Bool, _ m: String) throws { if !ok { throw ValidationError(m) } }
        try need(mode_t(socketMode, radix: 8) != nil, "socket_mode '\(socketMode)' is not octal")
        try need(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel),
                 "log_level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        try need((0...65535).contains(httpPort), "http_port \(httpPort) is not a port (0 to 65535)")
        try need(segmentBytes >= 4096, "segment_bytes \(segmentBytes) is below 4096")
        for (name, v) in [("segment_age", segmentAge), ("verify_interval", verifyInterval), ("recheck_interval", recheckInterval),
                          ("recheck_rate", recheckRate), ("idle_timeout", idleTimeout), ("max_connections", maxConnections),
                          ("max_inflight_per_connection", maxInflightPerConnection), ("max_inflight_total", maxInflightTotal),
                          ("max_idempotency_keys", maxIdempotencyKeys), ("archive_interval", archiveInterval),
                          ("http_max_connections", httpMaxConnections), ("http_idle_timeout", httpIdleTimeout)] {
            try need(v >= 1, "\(name) \(v) must be at least 1")
        }
        // 0 is meaningful for these: archive at once, no pin after a restore, no idempotency window.
        for (name, v) in [("hot_window", hotWindow), ("restore_pin", restorePin), ("idempotency_window", idempotencyWindow)] {
            try need(v >= 0, "\(name) \(v) must not be negative")
        }
        var endpoints: [WitnessEndpoint] = []
        for w in witnesses {
            do { endpoints.append(try WitnessEndpoint(w)) } catch { throw ValidationError("witnesses: \(error)") }
        }
        do { try CosignatureVerifier.distinct(endpoints.map(\.verifier)) } catch { throw ValidationError("witnesses: \(error.description)") }
        if let url = Dictionary(grouping: endpoints, by: \.url).first(where: { $0.value.count > 1 })?.key {
            throw ValidationError("witnesses: \(url) is listed twice; list each witness once")
        }
        if let q = witnessQuorum { try need(q >= 1 && q <= witnesses.count, "witness_quorum \(q) must be between 1 and the \(witnesses.count) witnesses") }
        try need(!data.isEmpty, "data is empty")
    }
}

extension DaemonConfig {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case data, key, origin, socket, socketMode = "socket_mode", allowUids = "allow_uids", allowGids = "allow_gids"
        case httpHost = "http_host", httpPort = "http_port", idempotencyWindow = "idempotency_window", maxIdempotencyKeys = "max_idempotency_keys"
        case segmentBytes = "segment_bytes", segmentAge = "segment_age", maxInflightPerConnection = "max_inflight_per_connection"
        case verifyInterval = "verify_interval", recheckInterval = "recheck_interval", recheckRate = "recheck_rate"
        case idleTimeout = "idle_timeout", maxConnections = "max_connections", maxInflightTotal = "max_inflight_total"
        case logLevel = "log_level", archive, hotWindow = "hot_window", archiveInterval = "archive_interval", restorePin = "restore_pin"
        case witnesses, witnessQuorum = "witness_quorum"
        case httpMaxConnections = "http_max_connections", httpIdleTimeout = "http_idle_timeout"
    }

    init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        data = try c.decodeIfPresent(String.self, forKey: .data) ?? data
        key = try c.decodeIfPresent(String.self, forKey: .key)
        origin = try c.decodeIfPresent(String.self, forKey: .origin) ?? origin
        socket = try c.decodeIfPresent(String.self, forKey: .socket) ?? socket
        socketMode = try c.decodeIfPresent(String.self, forKey: .socketMode) ?? socketMode
        allowUids = try c.decodeIfPresent([UInt32].self, forKey: .allowUids) ?? allowUids
        allowGids = try c.decodeIfPresent([UInt32].self, forKey: .allowGids) ?? allowGids
        httpHost = try c.decodeIfPresent(String.self, forKey: .httpHost) ?? httpHost
        httpPort = try c.decodeIfPresent(Int.self, forKey: .httpPort) ?? httpPort
        idempotencyWindow = try c.decodeIfPresent(Int.self, forKey: .idempotencyWindow) ?? idempotencyWindow
        maxIdempotencyKeys = try c.decodeIfPresent(Int.self, forKey: .maxIdempotencyKeys) ?? maxIdempotencyKeys
        segmentBytes = try c.decodeIfPresent(Int.self, forKey: .segmentBytes) ?? segmentBytes
        segmentAge = try c.decodeIfPresent(Int.self, forKey: .segmentAge) ?? segmentAge
        maxInflightPerConnection = try c.decodeIfPresent(Int.self, forKey: .maxInflightPerConnection) ?? maxInflightPerConnection
        verifyInterval = try c.decodeIfPresent(Int.self, forKey: .verifyInterval) ?? verifyInterval
        recheckInterval = try c.decodeIfPresent(Int.self, forKey: .recheckInterval) ?? recheckInterval
        recheckRate = try c.decodeIfPresent(Int.self, forKey: .recheckRate) ?? recheckRate
        idleTimeout = try c.decodeIfPresent(Int.self, forKey: .idleTimeout) ?? idleTimeout
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? maxConnections
        maxInflightTotal = try c.decodeIfPresent(Int.self, forKey: .maxInflightTotal) ?? maxInflightTotal
        logLevel = try c.decodeIfPresent(String.self, forKey: .logLevel) ?? logLevel
        archive = try c.decodeIfPresent(String.self, forKey: .archive)
        hotWindow = try c.decodeIfPresent(Int.self, forKey: .hotWindow) ?? hotWindow
        archiveInterval = try c.decodeIfPresent(Int.self, forKey: .archiveInterval) ?? archiveInterval
        restorePin = try c.decodeIfPresent(Int.self, forKey: .restorePin) ?? restorePin
        witnesses = try c.decodeIfPresent([String].self, forKey: .witnesses) ?? witnesses
        witnessQuorum = try c.decodeIfPresent(Int.self, forKey: .witnessQuorum)
        httpMaxConnections = try c.decodeIfPresent(Int.self, forKey: .httpMaxConnections) ?? httpMaxConnections
        httpIdleTimeout = try c.decodeIfPresent(Int.self, forKey: .httpIdleTimeout) ?? httpIdleTimeout
    }
}
