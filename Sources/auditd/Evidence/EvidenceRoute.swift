import AuditAccess
import AuditBase
import AuditExport
import Evidence
import Foundation
import Hummingbird
import LogProofs
import NIOCore

/// The spec-only verifier an evidence pack carries (scripts/verify_export.py, compiled in).
enum EmbeddedVerifier {
    static var bytes: [UInt8] { PackageResources.verify_export_py }
}

/// `GET /v1/orgs/:org/evidence?from=T1&to=T2[&sample=K][&seed=S][&consistency_from=N]`
/// (format-spec.md §9.5): the org's evidence pack for a time range, one ustar archive. Both
/// exports in it are recorded in the org's log like any export.
extension ReadPort {
    func evidence(_ req: Request, _ ctx: OrgContext) async throws -> Response {
        let org = ctx.org
        let p = try QueryParameters(req, org: org, personal: ledger.personal)
        let q = req.uri.queryParameters
        guard let fromText = p.echo["from"], let toText = p.echo["to"], p.filter.isTimeRangeOnly, p.text == nil else {
            throw HTTPError(
                .badRequest,
                message:
                    "an evidence pack covers a time range and nothing else: give from and to (RFC 3339), and no other filter"
            )
        }
        let k =
            try q.get("sample").map { v -> Int in
                guard let n = Int(v), (1...EvidenceSample.maxSize).contains(n) else {
                    throw HTTPError(
                        .badRequest, message: "sample: '\(v.prefix(20))' is not 1 to \(EvidenceSample.maxSize)")
                }
                return n
            } ?? EvidenceSample.defaultSize
        let auditorSeed = q.get("seed")
        if let s = auditorSeed, s.utf8.count > 256 || s.isEmpty {
            throw HTTPError(.badRequest, message: "seed: 1 to 256 bytes of the auditor's choosing")
        }
        var consistencyFrom: UInt64?
        if let v = q.get("consistency_from") {
            guard let n = UInt64(v), n <= ledger.size else {
                throw HTTPError(
                    .badRequest, message: "consistency_from: '\(v.prefix(40))' is not a tree size of this log")
            }
            consistencyFrom = n
        }
        if ctx.scope.org == nil, !ledger.holds(org: org) {
            throw HTTPError(.notFound, message: "org \(org) has no entries in this log")
        }
        // HEAD describes the pack without making it: making it records two exports.
        if req.method == .head { return Response(status: .ok, headers: [.contentType: "application/x-tar"]) }
        guard !ledger.isFollower else {
            throw HTTPError(
                .serviceUnavailable, message: "this is a read replica: ask the primary for an evidence pack")
        }
        let dir = NSTemporaryDirectory() + "auditd-evidence-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        do {
            let files = try await buildPack(
                in: dir, org: org, p: p, from: fromText, to: toText, k: k, auditorSeed: auditorSeed,
                consistencyFrom: consistencyFrom, scope: ctx.scope)
            return tarResponse(dir: dir, files: files, name: "\(org)-evidence-\(files.size).tar")
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
    }

    /// Writes the pack's files into `dir`: their names in archive order and the export's size.
    func buildPack(
        in dir: String, org: String, p: QueryParameters, from: String, to: String, k: Int, auditorSeed: String?,
        consistencyFrom: UInt64?, scope: TokenScope
    ) async throws -> (names: [String], size: UInt64) {
        func write(_ name: String, _ bytes: [UInt8]) throws {
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name))
        }
        // The two exports, each recorded (its own audit entry) before it is written.
        var checkpoint: SignedCheckpoint?
        for format in ["ndjson", "csv"] {
            let (anchor, cp) = try await recordExport(p, org: org, scope: scope, format: format)
            metrics.exports.increment()
            if checkpoint == nil { checkpoint = cp }
            let produce = try await exportProducer(
                org: org, p: p, format: format, anchor: anchor, cp: cp, consistencyFrom: consistencyFrom)
            let path = dir + "/export." + format
            FileManager.default.createFile(atPath: path, contents: nil)
            guard let h = FileHandle(forWritingAtPath: path) else { throw AuditError("cannot write \(path)") }
            try await produce { try h.write(contentsOf: Data($0.utf8)) }
            try h.close()
        }
        guard let cp = checkpoint else { throw AuditError("no export was recorded") }
        // One pass over the NDJSON export: the selection and the figures (on the export pool,
        // as every read of an export is).
        let (selection, summary, timeBounds) = try await Self.offload(exports, logger: logger) {
            try Self.survey(dir + "/export.ndjson")
        }
        let seed = EvidenceSample.seed(root: cp.checkpoint.root, auditorSeed: auditorSeed)
        let drawn = EvidenceSample.draw(seed: seed, count: selection.count, k: k)
        let ledger = self.ledger
        let size = cp.checkpoint.size
        let chosen = drawn.map { (index: $0, seq: selection[$0].seq, hash: selection[$0].hash) }
        let sampled = try await Self.offload(exports, logger: logger) {
            try chosen.map { c in
                EvidencePack.Sampled(
                    index: c.index, seq: c.seq, hash: c.hash, proof: try ledger.inclusionProof(seq: c.seq, size: size))
            }
        }
        let wanted = Set(sampled.map(\.seq))
        let contents: [UInt64: [UInt8]] = try await Self.offload(exports, logger: logger) {
            var found: [UInt64: [UInt8]] = [:]
            try Self.eachLine(dir + "/export.ndjson") { o in
                if o["type"] as? String == "entry", let s = o["seq"] as? Int, let seq = UInt64(exactly: s),
                    wanted.contains(seq), let c = o["content"] as? String
                {
                    found[seq] = Array(c.utf8)
                }
            }
            return found
        }
        let summaryJSON = summary.json(org: org, from: from, to: to)
        try write("checkpoint.txt", Array(cp.note.utf8))
        try write(
            "sample.json",
            EvidencePack.json(
                EvidencePack.sampleJSON(
                    seed: seed, auditorSeed: auditorSeed, checkpoint: cp.checkpoint, k: k, entries: sampled)))
        try write("summary.json", EvidencePack.json(summaryJSON))
        try write("controls.json", EvidencePack.json(EvidenceControls.json))
        let cosignatures = cp.note.split(separator: "\n").filter { $0.hasPrefix("— ") }.count - 1
        try write(
            "report.html",
            Array(
                EvidenceReport.html(
                    org: org, from: from, to: to, checkpoint: cp.note, treeSize: size,
                    cosignatures: max(0, cosignatures),
                    summary: summaryJSON,
                    sample: sampled.map { .init(index: $0.index, seq: $0.seq, content: contents[$0.seq]) },
                    seed: seed.hex, auditorSeed: auditorSeed, timeBounds: timeBounds
                ).utf8))
        try write("VERIFY.md", Array(EvidenceGuide.text(org: org, from: from, to: to, key: ledger.verifier.text).utf8))
        try write("verify_export.py", EmbeddedVerifier.bytes)
        var hashes: [String: String] = [:]
        for name in EvidencePack.files {
            guard let b = try FileOps.readFile(dir + "/" + name, limit: 64 << 30) else { continue }
            hashes[name] = SHA256.hash(b).hex
        }
        try write(
            "pack.json",
            EvidencePack.json(
                EvidencePack.manifest(org: org, from: from, to: to, k: k, auditorSeed: auditorSeed, hashes: hashes)))
        return (["pack.json"] + EvidencePack.files, size)
    }

    /// The selection (seqs and hashes of the `entry` lines), its figures, and the time bounds
    /// the trailer states, from the NDJSON export at `path`.
    static func survey(
        _ path: String
    ) throws -> (selection: [(seq: UInt64, hash: Hash)], summary: EvidenceSummary, timeBounds: [String]) {
        var selection: [(seq: UInt64, hash: Hash)] = []
        var summary = EvidenceSummary()
        var timeBounds: [String] = []
        try eachLine(path) { o in
            if o["type"] as? String == "trailer" {
                timeBounds = (o["timestamps"] as? [[String: Any]] ?? []).suffix(5).map {
                    "entries up to seq \(($0["tree_size"] as? Int ?? 1) - 1) existed no later than \($0["time"] as? String ?? "?"), by \($0["authority"] as? String ?? "?") (check with verify-export --tsa-trust)"
                }
            }
            guard o["type"] as? String == "entry", let s = o["seq"] as? Int, let seq = UInt64(exactly: s),
                let h = (o["hash"] as? String).flatMap(Hash.init(hex:))
            else { return }
            selection.append((seq, h))
            summary.add(content: (o["content"] as? String).map { Array($0.utf8) })
        }
        return (selection, summary, timeBounds)
    }

    /// Each line of the NDJSON file at `path`, parsed, read a piece at a time.
    static func eachLine(_ path: String, _ body: ([String: Any]) throws -> Void) throws {
        let reader = try ExportReader(path: path)
        for line in reader {
            if let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] { try body(o) }
        }
        if let f = reader.failure { throw AuditError("cannot read back \(path): \(f)") }
    }

    /// The files of `dir` as one ustar archive, streamed; `dir` is removed once sent.
    func tarResponse(dir: String, files: (names: [String], size: UInt64), name: String) -> Response {
        let body = ResponseBody { writer in
            defer { try? FileManager.default.removeItem(atPath: dir) }
            for file in files.names {
                let path = dir + "/" + file
                guard let h = FileHandle(forReadingAtPath: path) else { continue }
                defer { try? h.close() }
                let size = Int((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
                try await writer.write(ByteBuffer(bytes: Tar.header(name: file, size: size)))
                var left = size
                while left > 0, let chunk = try h.read(upToCount: min(left, 1 << 20)), !chunk.isEmpty {
                    try await writer.write(ByteBuffer(bytes: chunk))
                    left -= chunk.count
                }
                try await writer.write(ByteBuffer(bytes: Tar.padding(size)))
            }
            try await writer.write(ByteBuffer(bytes: Tar.end))
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "application/x-tar", .contentDisposition: "attachment; filename=\"\(name)\""],
            body: body)
    }
}
