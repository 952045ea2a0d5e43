import AuditWire
import Foundation
import NIOCore
import NIOPosix

/// An `AuditClient` that survives a daemon restart: when the connection is lost (or cannot be
/// made), it reconnects with growing pauses and sends the whole batch again. The daemon
/// answers an entry it already stored with its original ack (`duplicate` set) — if the entry
/// carries an `idempotency_key`. Entries without one may then be stored twice: give every
/// entry a key when you use retries.
public actor RetryingAuditClient {
    let socketPath: String
    let retries: Int
    let group: EventLoopGroup
    let ownsGroup: Bool
    private var client: AuditClient?
    /// Reconnections so far.
    public private(set) var reconnects = 0

    /// A client for `socketPath` that retries up to `retries` times per call.
    public init(socketPath: String, retries: Int = 20, group: EventLoopGroup? = nil) {
        self.socketPath = socketPath
        self.retries = retries
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: 1)
        ownsGroup = group == nil
    }

    /// Appends entries (pipelined) and returns each one's ack or refusal, retrying the whole
    /// batch after a lost connection.
    public func append(batch: [[UInt8]]) async throws -> [Result<Ack, WireError>] {
        var attempt = 0
        while true {
            do {
                let c = try await connected()
                return try await c.append(batch: batch)
            } catch {
                await client?.close()
                client = nil
                guard attempt < retries else { throw error }
                attempt += 1
                reconnects += 1
                try await Task.sleep(for: .milliseconds(min(2000, 100 * attempt)))
            }
        }
    }

    /// Appends one entry.
    public func append(_ json: [UInt8]) async throws -> Ack {
        guard let r = try await append(batch: [json]).first else { throw AuditClientError.connectionClosed }
        return try r.get()
    }

    private func connected() async throws -> AuditClient {
        if let client { return client }
        let c = try await AuditClient.connect(socketPath: socketPath, group: group)
        client = c
        return c
    }

    /// Closes the connection (and the event loop it made, if any).
    public func close() async {
        await client?.close()
        client = nil
        if ownsGroup { try? await group.shutdownGracefully() }
    }
}
