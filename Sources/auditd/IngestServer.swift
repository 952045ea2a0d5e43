import AuditBase
import AuditEntries
import AuditWire
import Foundation
import Logging
import NIOCore
import NIOPosix
import SegmentStore
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The Unix-socket ingest server, run as a service: binds, serves until graceful shutdown,
/// then stops accepting and waits for every accepted entry to be acknowledged.
struct IngestServer: Service {
    let config: DaemonConfig
    let shared: IngestContext
    let group: EventLoopGroup
    let ready: @Sendable (String) -> Void

    func run() async throws {
        let path = config.socket
        let mode = mode_t(config.socketMode, radix: 8) ?? 0o660
        let allowU = Set(config.allowUids)
        let allowG = Set(config.allowGids)
        let shared = self.shared
        let logger = shared.logger
        let connections = ConnectionCounter(limit: max(1, config.maxConnections))
        let idle = TimeAmount.seconds(Int64(max(1, config.idleTimeout)))
        if FileOps.socketInUse(path) {
            throw DaemonError("socket \(path) is in use by a running process; stop it or choose another --socket")
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .childChannelInitializer { channel in
                // Who is connecting (SO_PEERCRED), before any byte is read.
                let creds: EventLoopFuture<PeerCredentials>
                if let p = channel as? SocketOptionProvider {
                    creds = p.unsafeGetSocketOption(
                        level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
                } else {
                    creds = channel.eventLoop.makeFailedFuture(DaemonError("no peer credentials"))
                }
                return creds.flatMapThrowing { c in
                    let allowed = (allowU.isEmpty && allowG.isEmpty) || allowU.contains(c.uid) || allowG.contains(c.gid)
                    if allowed && !connections.enter() {
                        shared.metrics.rejected(.tooManyConnections)
                        try channel.pipeline.syncOperations.addHandler(
                            ForbiddenHandler(
                                code: .unavailable,
                                message:
                                    "the daemon serves \(connections.limit) writer connections at once (max_connections); retry later"
                            ))
                    } else if allowed {
                        channel.closeFuture.whenComplete { _ in connections.leave() }
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                        try channel.pipeline.syncOperations.addHandler(
                            IngestHandler(shared: shared, writer: Writer(uid: c.uid, gid: c.gid, via: "socket")))
                    } else {
                        shared.metrics.rejected(.forbiddenPeer)
                        logger.warning(
                            "refused writer", metadata: ["uid": "\(c.uid)", "gid": "\(c.gid)", "pid": "\(c.pid)"])
                        try channel.pipeline.syncOperations.addHandler(
                            ForbiddenHandler(
                                message:
                                    "uid \(c.uid) gid \(c.gid) is not an allowed writer (see allow_uids/allow_gids)"))
                    }
                }
            }
            .childChannelOption(ChannelOptions.autoRead, value: true)
        let server = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        _ = chmod(path, mode)
        // Tell auditctl, run from anywhere, where this directory's daemon listens.
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let record = DataDirectory(config.data).daemonSocket
        do { try FileOps.replaceFile(record, contents: Array((absolute + "\n").utf8)) } catch {
            logger.warning(
                "could not record the socket path for auditctl", metadata: ["file": "\(record)", "error": "\(error)"])
        }
        logger.info("ingest socket ready", metadata: ["path": "\(path)", "mode": "\(config.socketMode)"])
        ready(path)
        try? await gracefulShutdown()
        logger.info(
            "ingest: no longer accepting; finishing entries in flight", metadata: ["inflight": "\(shared.drain.value)"])
        try? await server.close()
        let deadline = ContinuousClock.now + .seconds(30)
        while shared.drain.value > 0 && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        _ = unlink(path)
        try? FileOps.unlink(record)
    }
}

/// `struct ucred` of socket(7): what SO_PEERCRED returns.
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

/// A failure of the daemon itself, not of its command line: reported as `Error: <description>`
/// with exit status 1 (a `ValidationError` prints the usage text and exits 64, EX_USAGE).
struct DaemonError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

extension FileOps {
    /// True if something accepts connections on the Unix socket at `path`.
    static func socketInUse(_ path: String) -> Bool {
        guard FileOps.exists(path) else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return r == 0
    }
}
