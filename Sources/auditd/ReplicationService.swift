import Logging
import Replication
import ServiceLifecycle

/// Replication into the bucket, run as a service: its two threads start with the daemon and
/// stop after ingest has drained (writers waiting in replicated mode get their answers first),
/// with a last round that puts what is durable. Failures are logged once per change.
struct ReplicationService: Service {
    let replicator: Replicator
    let logger: Logger

    func run() async throws {
        replicator.start()
        var said: String?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let s = replicator.status
            if s.failing != said {
                if let f = s.failing {
                    logger.error("replication to the bucket fails; retrying", metadata: ["error": "\(f)"])
                } else if said != nil {
                    logger.notice("replication to the bucket works again", metadata: ["lag_entries": "\(s.lagEntries)"])
                }
                said = s.failing
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
        replicator.stop()
        let s = replicator.status
        logger.info(
            "replication stopped",
            metadata: [
                "replicated": "\(s.replicatedEnd)", "stored": "\(s.storedEnd)", "published": "\(s.published ?? 0)",
            ])
    }
}
