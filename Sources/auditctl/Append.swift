import ArgumentParser
import AuditClient
import AuditWire
import ChainIndex
import Foundation
import NIOPosix

/// `auditctl append`: writes entries through a running daemon's socket (for scripts).
struct Append: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append NDJSON entries (standard input, or --entry) through auditd's ingest socket.",
        discussion: """
            Prints one JSON receipt per entry once it is durable: {"line","seq","hash","org_seq","duplicate"}.
            Refused entries are reported on standard error with their line number (exit status 3).
            With --retry, entries whose connection was lost are sent again on a new connection;
            entries that carry an idempotency_key are then stored exactly once.
            """)

    @Option(help: "The ingest socket.") var socket = "./auditd.sock"
    @Option(help: "One entry as JSON (instead of standard input).") var entry: String?
    @Option(help: "Entries per pipelined batch.") var batch = 256
    @Option(help: "Reconnect and resend this many times after a lost connection.") var retry = 0

    func run() async throws {
        var lines: [(Int, [UInt8])] = []
        if let entry {
            lines = [(1, Array(entry.utf8))]
        } else {
            var n = 0
            while let l = readLine(strippingNewline: true) {
                n += 1
                if !l.trimmingCharacters(in: .whitespaces).isEmpty { lines.append((n, Array(l.utf8))) }
            }
        }
        var rejected = 0
        // One event loop for every connection this run makes, shut down once at the end.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            rejected = try await send(lines, group: group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
        if rejected > 0 { throw ExitCode(3) }
    }

    /// Sends every line, reconnecting as allowed; returns how many were refused.
    func send(_ lines: [(Int, [UInt8])], group: MultiThreadedEventLoopGroup) async throws -> Int {
        var rejected = 0
        var attempts = 0
        var client = try await connect(after: 0, group: group)
        var i = 0
        while i < lines.count {
            let chunk = Array(lines[i..<min(lines.count, i + batch)])
            do {
                let results = try await client.append(batch: chunk.map(\.1))
                var out = ""
                for ((line, _), r) in zip(chunk, results) {
                    switch r {
                    case .success(let a):
                        out += "{\"line\":\(line),\"seq\":\(a.seq),\"org_seq\":\(a.orgSeq),\"hash\":\"\(a.hash.hex)\",\"duplicate\":\(a.duplicate)}\n"
                    case .failure(let e):
                        rejected += 1
                        printError("line \(line): \(e)")
                    }
                }
                FileHandle.standardOutput.write(Data(out.utf8))
                i += chunk.count
            } catch {
                guard attempts < retry else { throw ValidationError("\(error); \(i) entries were acknowledged before it") }
                attempts += 1
                printError("connection lost (\(error)); reconnecting, attempt \(attempts) of \(retry)")
                await client.close()
                client = try await connect(after: attempts, group: group)
            }
        }
        await client.close()
        return rejected
    }

    /// Connects, retrying (with growing pauses) while the daemon is down, up to `retry` times.
    func connect(after attempt: Int, group: MultiThreadedEventLoopGroup) async throws -> AuditClient {
        var n = attempt
        while true {
            if n > 0 { try await Task.sleep(for: .milliseconds(min(2000, 100 * n))) }
            do { return try await AuditClient.connect(socketPath: socket, group: group) } catch {
                guard n < retry else { throw ValidationError("\(error)") }
                n += 1
            }
        }
    }
}
