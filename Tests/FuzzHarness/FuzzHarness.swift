import Archive
import AuditAccess
import AuditBase
import AuditEntries
import AuditExport
import AuditIndex
import AuditWire
import ChainIndex
import Evidence
import Foundation
import LogProofs
import LogTree
import PersonalStore
import SegmentStore
import TimeStamping
import Witness

/// The body of every fuzz target (`auditfuzz`, FuzzTesting/auditfuzz, built with libFuzzer), kept here so
/// that `swift test` replays each target's fail cases and seeds through the very same code
/// (Tests/FuzzRegressionTests). Each takes any bytes and must never trap.
public enum FuzzHarness {
    /// Target name → body.
    public static let targets: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
        "FuzzBlock": block, "FuzzSealedSegment": sealedSegment, "FuzzOpenSegment": openSegment,
        "FuzzIndexFile": indexFile, "FuzzCheckpointLog": checkpointLog, "FuzzEntry": entry,
        "FuzzFrame": frame, "FuzzArchiveFiles": archiveFiles, "FuzzExport": export,
        "FuzzPersonalStore": personalStore, "FuzzEvidence": evidence,
    ]

    /// The verifier key of the log the seeds in FuzzTesting/Corpus were made from.
    public static let seedVerifierKey = "auditd.local/log+ee88f26d+AXR/pibBmbMjYtw0WlCsvfBrdHev8REN7QHU/Z9w/2wg"
    static let seedKey = try? NoteVerifier(seedVerifierKey)

    /// Block headers, whole blocks (checksum, zstd, records) and varints.
    public static func block(_ input: UnsafeRawBufferPointer) {
        let b = Array(input)
        _ = try? BlockHeader.parse(b[...])
        _ = try? Block.decode(b[...])
        var r = ByteReader(b)
        while (try? r.readVarint()) != nil {}
        var s = ByteReader(b)
        while (try? s.readSignedVarint()) != nil {}
    }

    /// A sealed segment file: header, trailer, footer, sequence map, blocks; as the store
    /// lists it and as a reader reads it.
    public static func sealedSegment(_ input: UnsafeRawBufferPointer) {
        let dir = Scratch.directory(with: SegmentNames.sealed(0), input)
        if let seg = try? SealedSegment(path: dir + "/" + SegmentNames.sealed(0)) {
            _ = try? seg.readAll()
            _ = try? seg.read(seq: seg.footer.firstSeq)
        }
        if let store = try? SegmentStore(directory: dir, readOnly: true) {
            try? store.scan { _ in true }
            _ = try? store.read(seqs: [0, 1, 2])
        }
    }

    /// An open segment: header and blocks, through torn-tail recovery (read-only: nothing is cut).
    public static func openSegment(_ input: UnsafeRawBufferPointer) {
        let dir = Scratch.directory(with: SegmentNames.open(0), input)
        if let store = try? SegmentStore(directory: dir, readOnly: true) {
            try? store.scan { _ in true }
            _ = try? store.read(seq: 0)
        }
    }

    /// A sealed segment's org index file (§7.1); with a first byte of 1 mod 4, the org-state
    /// snapshot (§7.2); with 2 or 3 mod 4, an org's posting list (§7.3): the second byte says
    /// how many 80-byte records the directory takes from the rest, segment 0's index file (the
    /// records point into) the remainder; with 3, the watermark.
    public static func indexFile(_ input: UnsafeRawBufferPointer) {
        guard let first = input.first else { return }
        let rest = UnsafeRawBufferPointer(rebasing: input.dropFirst())
        if first & 2 == 2 {
            guard let n = rest.first else { return }
            let body = UnsafeRawBufferPointer(rebasing: rest.dropFirst())
            let cut = min(body.count, Int(n) * PostingRecord.size)
            let dir = Scratch.directory(with: "org_a.pld", UnsafeRawBufferPointer(rebasing: body.prefix(cut)))
            FileManager.default.createFile(
                atPath: dir + "/" + OrgIndex.fileName(0), contents: Data(body.dropFirst(cut)))
            if first & 1 == 1 {
                FileManager.default.createFile(atPath: dir + "/watermark", contents: Data(body))
                _ = try? PostingLists.loadWatermark(dir + "/watermark")
            }
            guard let reader = try? PostingReader(directory: dir, indexDirectory: dir, org: "org_a") else { return }
            var p = reader
            _ = try? p.partition { $0.segment >= 3 }
            for i in 0..<p.count {
                guard let r = try? p.record(i) else { continue }
                if r.state == PostingRecord.live { try? p.visit(r) { _ in true } }
            }
            return
        }
        if first & 1 == 0 {
            let dir = Scratch.directory(with: OrgIndex.fileName(0), rest)
            if let idx = try? SealedIndex(path: dir + "/" + OrgIndex.fileName(0)) {
                for org in idx.dir.keys { _ = try? idx.hits(org: org) }
                // Read whole and compared with entries as a verification does, for a segment of
                // at most 10,000 entries (a real one's count comes from its own file).
                if idx.endSeq - idx.firstSeq <= 10_000 {
                    var rows = SealedIndexRows(
                        loading: idx.path, segment: idx.segment, firstSeq: idx.firstSeq, endSeq: idx.endSeq)
                    let f = IndexFields(time: 0, category: .access, outcome: .success, action: "a", actor: "human:u")
                    for org in idx.dir.keys.sorted().prefix(4) {
                        _ = rows.compare(org: org, seq: idx.firstSeq, orgSeq: 0, fields: f)
                    }
                    _ = rows.finish()
                }
            }
            _ = try? SealedIndexCheck.check(path: dir + "/" + OrgIndex.fileName(0), segment: 0)
            if let oi = try? OrgIndex(directory: dir, readOnly: true) {
                _ = try? oi.query(org: "org_a", filter: .init(), newestFirst: true, limit: 10, cursor: nil)
            }
        } else {
            let dir = Scratch.directory(with: "orgstate", rest)
            _ = try? Ledger.loadOrgState(dir + "/orgstate")
        }
    }

    /// The checkpoint log (§8.2) and signed checkpoint notes (§8.1).
    public static func checkpointLog(_ input: UnsafeRawBufferPointer) {
        guard let verifier = seedKey else { return }
        let dir = Scratch.directory(with: "checkpoints.log", input)
        FileManager.default.createFile(atPath: dir + "/checkpoints.idx", contents: nil)
        if let log = try? CheckpointLog(directory: dir, verifier: LogKeys(verifier), readOnly: true) {
            // CheckpointLog.forEach reads the log (it is not Sequence.forEach).
            // swift-format-ignore: ReplaceForEachWithForLoop
            _ = try? log.forEach { _, _, _ in }
            _ = try? log.first(atLeast: 1, verifier: LogKeys(verifier))
        }
        let text = String(decoding: input, as: UTF8.self)
        _ = try? SignedCheckpoint(note: text, verifier: verifier)
        // Key successions (§8.8): a statement, and a checkpoint checked along a chain.
        _ = try? KeySuccession(note: text)
        if let keys = try? LogKeys(trusting: verifier, successions: [text]) {
            _ = try? SignedCheckpoint(note: text, verifier: keys)
        }
        _ = try? NoteVerifier(text)
        _ = try? verifier.open(text)
    }

    /// Writers' entries (§4), through both preparation paths, and stored entries.
    public static func entry(_ input: UnsafeRawBufferPointer) {
        let b = Array(input)
        let writer = Writer(uid: 1000, gid: 1000, via: "fuzz")
        // The one-pass fast path must make what the general parser makes, or decline.
        if !Entry.preparePathsAgree(json: b, receivedAt: 1_700_000_000_000, writer: writer) {
            fatalError("the fast and general preparation paths disagree")
        }
        if let p = try? Entry.prepare(
            json: b, receivedAt: 1_700_000_000_000, writer: writer)
        {
            // The one-pass scanner must answer as the parser does on every canonical entry.
            if !Entry.storedFieldScannerAgrees(p.content) {
                fatalError("stored-field scanner disagrees with the parser")
            }
            _ = try? Entry.decodeStored(p.content)
        }
        _ = try? JSONParser.parse(b)
        _ = Entry.indexFields(ofStored: b)
        _ = try? RecordPayload(bytes: b)
        _ = try? Link(bytes: b)
    }

    /// The ingest socket's frames (§9.1), fed whole and in two pieces.
    public static func frame(_ input: UnsafeRawBufferPointer) {
        let b = Array(input)
        var p = FrameParser(maxBody: 4096)
        var buf = b
        for item in p.parse(&buf) {
            if case .frame(let f) = item {
                _ = Ack(body: f.body)
                _ = WireError(body: f.body)
                // The witness frames (§9.1): what a client parses from the daemon, and the
                // daemon from a client; and a receipt line (§9.4).
                if let r = CheckpointReply(body: f.body), CheckpointReply(body: r.body) != r {
                    fatalError("CHECKPOINT reply does not round-trip")
                }
                if let r = InclusionReply(body: f.body), InclusionReply(body: r.body) != r {
                    fatalError("INCLUSION reply does not round-trip")
                }
                if let seqs = InclusionReply.seqs(f.body), InclusionReply.request(seqs) != f.body {
                    fatalError("INCLUSION request does not round-trip")
                }
                _ = try? EntryReceipt(json: String(decoding: f.body, as: UTF8.self))
            }
        }
        // A witness's add-checkpoint body comes from any peer (tlog-witness, §8.5).
        _ = fuzzWitness?.addCheckpoint(b)
        var q = FrameParser(maxBody: 4096)
        var first = Array(b.prefix(b.count / 2))
        _ = q.parse(&first)
        first.append(contentsOf: b.dropFirst(b.count / 2))
        _ = q.parse(&first)
    }

    /// The small JSON files of the data and archive directories, chosen by the first byte:
    /// stubs, bundle manifests, tokens, holds, retention.
    public static func archiveFiles(_ input: UnsafeRawBufferPointer) {
        guard let first = input.first else { return }
        let rest = UnsafeRawBufferPointer(rebasing: input.dropFirst())
        switch first % 5 {
        case 0:
            let dir = Scratch.directory(with: ArchivedStub.fileName(0), rest)
            _ = try? ArchivedStub.load(dir + "/" + ArchivedStub.fileName(0))
            _ = try? ArchivedStub.retired(inSegments: dir, readOnly: true)
        case 1:
            _ = try? JSONDecoder().decode(BundleManifest.self, from: Data(rest))
        case 2:
            let dir = Scratch.directory(with: "tokens.json", rest)
            _ = try? TokenStore.load(path: DataDirectory(dir).tokens)
        case 3:
            let dir = Scratch.directory(with: "holds.json", rest)
            _ = try? LegalHolds.load(dir: dir)
        default:
            let dir = Scratch.directory(with: "retention.json", rest)
            _ = try? RetentionPolicy.load(dir: dir)
        }
    }

    /// The personal store's files (§5.4.2) as a reader opens them, and the committed form's
    /// text (§5.4.1). First byte: 0 `subjects`, 1 `erasures` and `withheld`, 2 a values file with the
    /// `subjects` it is read with (a u16 length of that part first, so rows can decrypt and
    /// their fields be parsed), 3 base64url and subject tags, 4 a committed value.
    public static func personalStore(_ input: UnsafeRawBufferPointer) {
        guard let first = input.first else { return }
        let rest = Array(input.dropFirst())
        func store(_ files: [(String, [UInt8])]) -> PersonalStore? {
            let dir = Scratch.directory(with: "unused", UnsafeRawBufferPointer(start: nil, count: 0))
            try? FileManager.default.createDirectory(atPath: dir + "/values", withIntermediateDirectories: true)
            for (name, bytes) in files {
                FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(bytes))
            }
            return try? PersonalStore(directory: dir, readOnly: true)
        }
        switch first % 5 {
        case 0: _ = store([("subjects", rest)])?.subjectCount
        case 1:
            // `erasures` and `withheld` (§5.4.3) read from the same bytes.
            let s = store([("erasures", rest), ("withheld", rest)])
            _ = s?.erasureRecords
            for r in s?.withheld.records ?? [] { _ = s?.withheld.entries(of: r) }
        case 2:
            guard rest.count >= 2 else { return }
            let n = min(rest.count - 2, Int(rest[0]) | Int(rest[1]) << 8)
            let s = store([
                ("subjects", Array(rest[2..<(2 + n)])), ("values/00000000000000000000.values", Array(rest[(2 + n)...])),
            ])
            _ = try? s?.rows(file: 0)
            for seq in UInt64(0)..<4 { _ = try? s?.openings(seq: seq) }
        case 3:
            let text = String(decoding: rest, as: UTF8.self)
            if let b = Base64URL.decode(text) { precondition(Base64URL.encode(b) == text, "base64url round trip") }
            _ = SubjectTag(text: text)
        default:
            if let v = try? JSONParser.parse(rest, maxDepth: 4) {
                _ = Personal.commitment(of: v)
                _ = Personal.commitments(in: v)
                _ = Personal.namesInClear(v, subject: "usr_1")
            }
            _ = Personal.mayHoldCommitments(rest)
        }
    }

    /// A CA the time-stamp bodies trust (the test authority's, scripts/tsa-server).
    static let tsaTrust = try? TimeStampTrust(
        pem: Array(
            """
            -----BEGIN CERTIFICATE-----
            MIIBkzCCATmgAwIBAgIUZs9lST7+m/yTy7Yp0yvv2mhMgpgwCgYIKoZIzj0EAwIw
            HzEdMBsGA1UEAwwUYXVkaXRsb2cgdGVzdCBUU0EgQ0EwHhcNMjYxMjA1MDEzODQ1
            WhcNMzYxMjAyMDEzODQ1WjAfMR0wGwYDVQQDDBRhdWRpdGxvZyB0ZXN0IFRTQSBD
            QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABJX1c/cJfLt736zT7aE98KeQEAIw
            cmK8zE2ZgtcLWj1pqtnwfpR2DXoPgQZC41shCiTd0J95E2CLuDBC4dOgE26jUzBR
            MB0GA1UdDgQWBBRmGVZioUMaVKegIr+IxAbvSTeGWTAfBgNVHSMEGDAWgBRmGVZi
            oUMaVKegIr+IxAbvSTeGWTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
            MEUCIEYKRKmr/8tHUcfses3hWwBSCkMIBpJkKnZkn2wA/y2nAiEAwdGo6b7jqZ+W
            M6+rdmcZ4IV7Pkd0ehx4jBx21wjHmws=
            -----END CERTIFICATE-----

            """.utf8), source: "the fuzz CA")

    /// What an authority or a company hands over (§8.7, §9.5): a time-stamp answer and token
    /// (checked against a CA), the tokens file, and an evidence pack's archive, unpacked and
    /// checked.
    public static func evidence(_ input: UnsafeRawBufferPointer) {
        let b = Array(input)
        _ = try? TimeStampToken.fromResponse(b)
        if let trust = tsaTrust {
            _ = try? TimeStampToken.verify(b, digest: [UInt8](repeating: 0, count: 32), trust: trust)
        }
        _ = TimeStampToken.parseGeneralizedTime(b)
        let dir = Scratch.directory(with: "timestamps", input)
        if let j = try? TimeStampJournal(path: dir + "/timestamps") {
            _ = try? j.stamps(sizes: 0...UInt64.max, limit: 8)
        }
        if (try? Tar.extract(dir + "/timestamps", into: dir + "/pack", maxFiles: 16, maxBytes: 1 << 20)) != nil {
            _ = EvidenceVerifier(key: seedKey).verify(dir: dir + "/pack")
        }
    }

    /// Exports as `auditctl verify-export` reads them (§9.3): NDJSON, and CSV.
    public static func export(_ input: UnsafeRawBufferPointer) {
        let text = String(decoding: input, as: UTF8.self)
        let lines = text.split(separator: "\n").map(String.init)
        _ = ExportVerifier(key: seedKey).verify(lines: lines)
        _ = ExportVerifier(key: nil).verify(lines: lines)
        if let csv = try? ExportCSV.lines(text) { _ = ExportVerifier(key: seedKey).verify(lines: csv, format: "csv") }
        // The streaming reader verify-export uses, on the same bytes from a file.
        let dir = Scratch.directory(with: "export", input)
        if let r = try? ExportReader(path: dir + "/export") {
            _ = ExportVerifier(key: seedKey).verify(lines: r, format: r.format)
        }
    }
}

/// Scratch files for the targets that read files: in memory (`/dev/shm`) when it exists, one
/// directory per process and thread.
enum Scratch {
    static let base: String = {
        let root = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        return root + "/auditlog-fuzz-\(getpid())"
    }()

    /// A fresh directory holding `bytes` as the file `name`.
    static func directory(with name: String, _ bytes: UnsafeRawBufferPointer) -> String {
        let dir = base + "/" + String(UInt(bitPattern: Thread.current.hash))
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(bytes))
        return dir
    }
}

/// A witness for the log of the seed key, its state in a scratch directory.
let fuzzWitness: Witness? = {
    guard let log = try? NoteSigner.generate(name: "fuzz.test/log"),
        let w = try? NoteSigner.generate(name: "fuzz.test/w")
    else { return nil }
    return try? Witness(
        cosigner: Cosigner(key: w), logs: [LogKeys(log.verifier)], stateDirectory: Scratch.base + "-witness")
}()
