import ArgumentParser
import AuditClient
import AuditWire
import ChainIndex
import Foundation

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
        let client = RetryingAuditClient(socketPath: socket, retries: retry)
        var rejected = 0
        var i = 0
        do {
            while i < lines.count {
                let chunk = Array(lines[i..<min(lines.count, i + batch)])
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
                try FileHandle.standardOutput.write(contentsOf: Data(out.utf8))
                i += chunk.count
            }
        } catch {
            await client.close()
            throw CLIError("\(error); \(i) entries were acknowledged before it")
        }
        let n = await client.reconnects
        if n > 0 { printError("reconnected \(n) times") }
        await client.close()
        if rejected > 0 { throw ExitCode(3) }
    }

}
