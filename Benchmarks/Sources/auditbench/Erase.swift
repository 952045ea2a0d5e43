import ArgumentParser
import AuditBase
import AuditEntries
import ChainIndex
import Foundation

/// `erase`: the time to erase one data subject from a log written with `append --personal`
/// (format-spec.md §5.4.3): its record appended and durable, its key destroyed. By default the
/// human actor with the most entries in the events file.
struct Erase: ParsableCommand {
    @Option(help: "Data directory (written by append --personal).") var dir: String
    @Option(help: "The events the log was written from, to find the busiest human.") var events: String
    @Option(help: "Read at most this many events to find it.") var count: Int?

    func run() throws {
        var counts: [String: Int] = [:]
        for line in try loadLines(events, limit: count) {
            guard let v = try? JSONParser.parse(line, maxDepth: 4), v["actor"]?["type"]?.stringValue == "human",
                let org = v["org"]?.stringValue, let id = v["actor"]?["id"]?.stringValue
            else { continue }
            counts[org + " " + id, default: 0] += 1
        }
        guard let busiest = counts.max(by: { $0.value < $1.value }) else {
            throw ValidationError("no human actor in \(events)")
        }
        let parts = busiest.key.split(separator: " ").map(String.init)
        let ledger = try Ledger(directory: dir, signer: try signer(for: dir))
        let size = ledger.size
        let subjects = ledger.personal.subjectCount
        let start = Date()
        let done = try ledger.erase(
            org: parts[0], subject: parts[1], reason: "benchmark", authority: "auditbench", actor: "uid:0",
            via: "auditbench"
        ) {}
        let secs = Date().timeIntervalSince(start)
        try ledger.close()
        print(
            "erase: subject \(parts[1]) of \(parts[0]) (\(busiest.value) entries as actor) in a log of \(size) entries and \(subjects) subjects: \(String(format: "%.1f", secs * 1000)) ms (record \(done.record.seq) durable, key destroyed)"
        )
    }
}
