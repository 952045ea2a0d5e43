import ArgumentParser
import AuditBase
import ChainIndex
import Evidence
import Foundation
import LogProofs
import TimeStamping

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `auditctl evidence`: an org's evidence pack for a time range, from the running daemon's
/// read port (the exports in it are recorded in the log), unpacked into a folder and checked.
struct EvidenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evidence",
        abstract: "Write an org's evidence pack for a time range (format-spec.md §9.5) and check it.",
        discussion: """
            The pack is one folder (and the same as DIR.tar): the complete time-range export \
            (NDJSON and CSV) with its proof, the checkpoint it ends at, a sample of entries drawn \
            from the checkpoint's root with their inclusion proofs, figures computed from the \
            entries, the controls they evidence, a printable report, and the spec-only verifier \
            with VERIFY.md. The running auditd makes it: both exports are recorded in the org's log.
            """)

    @Argument(help: "The data directory (its key checks the pack).") var data: String
    @Option(help: "The org.") var org: String
    @Option(help: "From (inclusive), RFC 3339 UTC.") var from: String
    @Option(help: "To (exclusive), RFC 3339 UTC.") var to: String
    @Option(help: "The folder to write (created; DIR.tar is written beside it).") var out: String
    @Option(help: "Entries in the sample (1 to 1000).") var sample = EvidenceSample.defaultSize
    @Option(help: "The auditor's own seed, mixed into the sample's draw.") var seed: String?
    @Option(help: "A checkpoint the auditor kept (a note file): the pack proves the log extends it.")
    var sinceCheckpoint: String?
    @Option(help: "The daemon's read port.") var url = "http://127.0.0.1:8650"
    @Option(help: "A read-port token for the org, or an operator token (default: $AUDITLOG_TOKEN).") var token: String?

    func run() async throws {
        guard let token = token ?? ProcessInfo.processInfo.environment["AUDITLOG_TOKEN"] else {
            throw ValidationError(
                "--token (or AUDITLOG_TOKEN) is needed: the pack is made by the read port; create one with `auditctl token create \(data) --org \(org)`"
            )
        }
        let key = try Ledger.verifierKey(directory: data)
        var kept: [String] = []
        var query = [
            URLQueryItem(name: "from", value: from), URLQueryItem(name: "to", value: to),
            URLQueryItem(name: "sample", value: String(sample)),
        ]
        if let seed { query.append(URLQueryItem(name: "seed", value: seed)) }
        if let path = sinceCheckpoint {
            let cp = try EvidenceCommand.checkpoint(path, key: key)
            kept.append(cp.note)
            query.append(URLQueryItem(name: "consistency_from", value: String(cp.checkpoint.size)))
        }
        guard var c = URLComponents(string: url) else { throw ValidationError("--url \(url) is not a URL") }
        c.path = "/v1/orgs/\(org)/evidence"
        c.queryItems = query
        guard let u = c.url else { throw ValidationError("--org \(org) does not make a URL") }
        var req = URLRequest(url: u, timeoutInterval: 3600)
        req.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let tar = out.hasSuffix("/") ? String(out.dropLast()) + ".tar" : out + ".tar"
        // The daemon makes the whole pack before its first byte: for a busy org that is minutes,
        // which the shared session's one-minute wait for data would cut off (NSURLError -1001).
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = 3600
        config.timeoutIntervalForResource = 6 * 3600
        let session = URLSession(configuration: config)
        defer { session.finishTasksAndInvalidate() }
        let (file, response): (URL, URLResponse)
        do { (file, response) = try await session.download(for: req) } catch {
            throw CLIError("the read port at \(url) did not deliver the pack: \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else {
            let body = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
            throw CLIError("the read port answered \(status): \(body.prefix(500))")
        }
        try? FileManager.default.removeItem(atPath: tar)
        try FileManager.default.moveItem(at: file, to: URL(fileURLWithPath: tar))
        let names = try Tar.extract(tar, into: out)
        let r = EvidenceVerifier(key: key.original, kept: kept).verify(dir: out)
        if let f = r.failure {
            print("FAILED: the pack written to \(out) does not verify: \(f)")
            throw ExitCode(1)
        }
        print(
            "wrote \(out) (\(names.count) files) and \(tar): \(r.export?.entries ?? 0) entries of org \(org) from \(from) to \(to), complete; sample of \(r.sampled); checked with the key of \(data)"
        )
    }

    /// The checkpoint note in file `path`, signed by `key`.
    static func checkpoint(_ path: String, key: LogKeys) throws -> SignedCheckpoint {
        guard let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }) else {
            throw CLIError("cannot read checkpoint file \(path)")
        }
        do { return try SignedCheckpoint(note: text, verifier: key) } catch {
            throw CLIError("\(path) is not a checkpoint signed by the log's key: \(error)")
        }
    }
}

/// `auditctl verify-evidence`: everything an evidence pack holds, checked offline.
struct VerifyEvidence: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check an evidence pack (a folder or its .tar) offline, with the log's verifier key.")

    @Argument(help: "The pack: its folder, or the .tar file.") var pack: String
    @Option(help: "The log's verifier key to trust (compare it with the operator's published key).") var key: String
    @Option(help: "A witness's verifier key (repeatable): its cosignature on the checkpoint counts towards --quorum.")
    var witness: [String] = []
    @Option(help: "Cosignatures required from the --witness keys (default: all of them).") var quorum: Int?
    @Option(help: "PEM file of the certificates trusted to sign the exports' time-stamp tokens.") var tsaTrust: String?
    @Option(help: "A checkpoint the auditor kept (a note file): fail unless the pack's checkpoint extends it.")
    var sinceCheckpoint: String?

    func run() throws {
        let k: NoteVerifier
        do { k = try NoteVerifier(key) } catch { throw ValidationError("--key: \(error)") }
        var dir = pack
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: pack, isDirectory: &isDir) else {
            throw CLIError("\(pack) does not exist")
        }
        if !isDir.boolValue {
            dir = NSTemporaryDirectory() + "auditctl-evidence-\(UUID().uuidString)"
            do { _ = try Tar.extract(pack, into: dir) } catch { throw CLIError("\(error)") }
        }
        defer { if dir != pack { try? FileManager.default.removeItem(atPath: dir) } }
        var trust: TimeStampTrust?
        do { trust = try tsaTrust.map { try TimeStampTrust(file: $0) } } catch {
            throw ValidationError("--tsa-trust: \(error)")
        }
        let kept =
            try sinceCheckpoint.map { path -> [String] in
                guard let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) })
                else { throw CLIError("cannot read checkpoint file \(path)") }
                return [text]
            } ?? []
        let r = EvidenceVerifier(key: k, kept: kept, timeTrust: trust).verify(dir: dir)
        if let f = r.failure {
            print("FAILED: \(f)")
            throw ExitCode(1)
        }
        guard let e = r.export else { throw ExitCode(1) }
        let witnesses: [CosignatureVerifier]
        do { witnesses = try witness.map { try CosignatureVerifier($0) } } catch {
            throw ValidationError("--witness: \(error)")
        }
        let need = quorum ?? witnesses.count
        if !witnesses.isEmpty {
            let by = witnesses.compactMap { w in
                ((try? w.cosignature(in: e.checkpointNote)) ?? nil).map {
                    "\(w.name) at \(Timestamp.format(Int64(clamping: $0) * 1000))"
                }
            }
            guard by.count >= need else {
                print("FAILED: the pack's checkpoint carries \(by.count) of the \(need) cosignatures required")
                throw ExitCode(1)
            }
            print(
                "WITNESSED: the checkpoint is cosigned by \(by.joined(separator: ", ")): a second bound on when its entries existed, by the witnesses' clocks"
            )
        }
        for l in VerifyExport.timeReport(e, trust: tsaTrust).lines { print(l) }
        print(
            "OK: evidence pack of org \(e.org) (\(e.filter["from"] ?? "") to \(e.filter["to"] ?? "")): both exports complete, \(e.entries) entries in the signed tree of size \(e.treeSize); the sample of \(r.sampled) is the one the seed draws, each entry proven; every figure of summary.json recomputed; the control mapping is the published one"
        )
    }
}
