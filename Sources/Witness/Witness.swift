import AuditBase
import Foundation
import LogProofs

/// A transparency-log witness (C2SP tlog-witness, format-spec.md §8.5): it cosigns a log's
/// checkpoint only when the checkpoint is signed by the log's key and is consistent with the
/// latest one it cosigned for that log, which it keeps durably. An org's security team can run
/// one, so that the operator cannot show it one history and an auditor another.
public final class Witness: @unchecked Sendable {
    /// An HTTP answer to `add-checkpoint`.
    public struct Response: Sendable, Equatable {
        /// HTTP status.
        public var status: Int
        /// Body.
        public var body: String
        /// Content type.
        public var contentType: String

        static func text(_ status: Int, _ message: String) -> Response {
            Response(status: status, body: message + "\n", contentType: "text/plain; charset=utf-8")
        }
    }

    /// What the witness remembers of one log: the latest checkpoint it cosigned.
    public struct LogState: Sendable, Equatable {
        /// Its size.
        public var size: UInt64
        /// Its root.
        public var root: Hash
    }

    /// The witness's key.
    public let cosigner: Cosigner
    /// Each log's keys: the one configured and the successions followed from it (under `lock`).
    private var logs: [String: LogKeys]
    let statePath: String
    /// `DIR/key-successions`: the statements followed, per origin (JSON).
    let successionsPath: String
    /// `DIR/notes/`: the last signed note cosigned for each log, kept for evidence.
    let notesDirectory: String
    /// `DIR/evidence/`: each signed checkpoint that contradicted what this witness cosigned.
    let evidenceDirectory: String
    /// Evidence files kept at most: a hostile log cannot fill the disk with them.
    static let maxEvidence = 100
    /// The exclusive lock on the state directory, held for the witness's life: two processes
    /// sharing one state could each cosign a different history at the same size.
    private let lockFD: Int32
    private let lock = NSLock()
    private var state: [String: LogState]
    /// Seconds since the epoch, for cosignature timestamps.
    let clock: @Sendable () -> UInt64

    /// A witness cosigning with `cosigner` for `logs` (each identified by its key's name, the
    /// checkpoints' origin), keeping its state in `stateDirectory/witness-state`.
    public init(
        cosigner: Cosigner, logs: [LogKeys], stateDirectory: String,
        clock: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970) }
    ) throws {
        self.cosigner = cosigner
        var byOrigin: [String: LogKeys] = [:]
        for l in logs {
            guard byOrigin[l.name] == nil else {
                throw AuditError("two keys configured for log \(l.name): a witness follows one key per origin")
            }
            byOrigin[l.name] = l
        }
        self.clock = clock
        try FileOps.makeDirectory(stateDirectory, mode: 0o700)
        lockFD = try Self.lockState(stateDirectory)
        statePath = stateDirectory + "/witness-state"
        successionsPath = stateDirectory + "/key-successions"
        do {
            let followed = try Self.loadSuccessions(successionsPath)
            for (origin, notes) in followed {
                guard let k = byOrigin[origin] else { continue }
                byOrigin[origin] = try LogKeys(trusting: k.original, successions: notes)
            }
        } catch {
            close(lockFD)
            throw AuditError("\(successionsPath): \(error)")
        }
        self.logs = byOrigin
        notesDirectory = stateDirectory + "/notes"
        evidenceDirectory = stateDirectory + "/evidence"
        do {
            try FileOps.makeDirectory(notesDirectory, mode: 0o700)
            try FileOps.makeDirectory(evidenceDirectory, mode: 0o700)
            state = try Self.load(statePath)
        } catch {
            close(lockFD)
            throw error
        }
    }

    deinit { close(lockFD) }

    private static func lockState(_ directory: String) throws -> Int32 {
        do { return try FileOps.lockExclusive(directory + "/lock", patience: 0) } catch {
            guard error.code == .locked else { throw error }
            throw AuditError(
                "another witness process is using the state directory \(directory): stop it first (two witnesses sharing one state could cosign two histories)"
            )
        }
    }

    /// The latest checkpoint cosigned for `origin`.
    public func latest(_ origin: String) -> LogState? { lock.withLock { state[origin] } }

    /// Handles one `add-key-succession` request body (format-spec.md §8.8, this project's
    /// addition to tlog-witness): a statement handing a log's key on, which must be signed by
    /// the key this witness holds in force for the log and by the new key. Once followed
    /// (kept durably), checkpoints signed by the new key are cosigned.
    public func addKeySuccession(_ request: [UInt8]) -> Response {
        guard request.count <= 4096, let text = String(validating: request, as: UTF8.self) else {
            return .text(400, "a key succession is UTF-8 of at most 4096 bytes")
        }
        let s: KeySuccession
        do { s = try KeySuccession(note: text) } catch { return .text(400, error.description) }
        return lock.withLock { () -> Response in
            guard var keys = logs[s.origin] else {
                return .text(404, "unknown log \(s.origin): this witness is not configured for it")
            }
            if keys.successions.contains(s) { return .text(200, "already followed") }
            do { try keys.follow(s) } catch { return .text(403, "\(error)") }
            var all = logs.mapValues(\.notes).filter { !$0.value.isEmpty }
            all[s.origin] = keys.notes
            do {
                try FileOps.replaceFile(successionsPath, contents: Array(try JSONEncoder().encode(all)), mode: 0o600)
            } catch {
                return .text(500, "cannot keep the key succession: \(error)")
            }
            logs[s.origin] = keys
            return .text(200, "followed: \(s.origin) is signed by \(s.new.text) from size \(s.handover)")
        }
    }

    static func loadSuccessions(_ path: String) throws -> [String: [String]] {
        guard let bytes = try FileOps.readFile(path, limit: 1 << 22) else { return [:] }
        return try JSONDecoder().decode([String: [String]].self, from: Data(bytes))
    }

    /// Handles one `add-checkpoint` request body (tlog-witness): the old size line, the
    /// consistency proof lines, an empty line, then the signed checkpoint.
    public func addCheckpoint(_ request: [UInt8]) -> Response {
        guard request.count <= 1 << 20 else { return .text(400, "request body is larger than 1 MiB") }
        guard let text = String(validating: request, as: UTF8.self) else {
            return .text(400, "request body is not UTF-8")
        }
        var rest = Substring(text)
        func line() -> Substring? {
            guard let nl = rest.firstIndex(of: "\n") else { return nil }
            defer { rest = rest[rest.index(after: nl)...] }
            return rest[..<nl]
        }
        guard let first = line(), first.hasPrefix("old "), let old = UInt64(first.dropFirst(4)),
            String(old) == first.dropFirst(4)
        else {
            return .text(400, "the first line must be \"old <size>\" (decimal, no leading zeroes)")
        }
        var proof: [Hash] = []
        while true {
            guard let l = line() else { return .text(400, "no empty line after the consistency proof") }
            if l.isEmpty { break }
            guard proof.count < 63 else { return .text(400, "more than 63 consistency proof lines") }
            guard let raw = Note.base64(l), let h = Hash(bytes: raw) else {
                return .text(400, "consistency proof line is not canonical base64 of 32 bytes: \(l.prefix(80))")
            }
            proof.append(h)
        }
        let note = String(rest)
        let body: String
        do {
            try Note.checkShape(note)
            body = try Cosignature.split(note: note).body
        } catch { return .text(400, "checkpoint: \(error.description)") }
        let cp: Checkpoint
        do { cp = try Checkpoint(text: body) } catch { return .text(400, "checkpoint: \(error.description)") }
        guard let key = lock.withLock({ logs[cp.origin] }) else {
            return .text(404, "unknown log \(cp.origin): this witness is not configured for it")
        }
        do { _ = try key.openCheckpoint(note, size: cp.size) } catch {
            return .text(
                403,
                "checkpoint of \(cp.origin) carries no valid signature by its key in force at size \(cp.size) (\(key.current.text)): \(error.description)"
            )
        }
        guard old <= cp.size else {
            return .text(400, "old size \(old) is larger than the checkpoint's size \(cp.size)")
        }
        return lock.withLock { () -> Response in
            let known = state[cp.origin]
            let size = known?.size ?? 0
            guard old == size else {
                return Response(status: 409, body: "\(size)\n", contentType: "text/x.tlog.size")
            }
            if old == 0 {
                guard proof.isEmpty else { return .text(422, "a consistency proof from size 0 must be empty") }
                if let known, cp.size == 0, known.root != cp.root {
                    return .text(409, "the empty tree has another root")
                }
            } else if old == cp.size {
                guard let known, known.root == cp.root else {
                    let kept =
                        known.map { keepEvidence("fork", cp, old: old, proof: proof, note: note, known: $0) } ?? ""
                    return .text(
                        409,
                        "checkpoint of \(cp.origin) at size \(cp.size) has another root than the one this witness cosigned: the log forked\(kept)"
                    )
                }
                guard proof.isEmpty else {
                    return .text(422, "a consistency proof between two trees of the same size must be empty")
                }
            } else {
                guard let known,
                    Merkle.verifyConsistency(
                        old: old, new: cp.size, oldRoot: known.root, newRoot: cp.root, proof: proof)
                else {
                    let kept =
                        known.map { keepEvidence("proof", cp, old: old, proof: proof, note: note, known: $0) } ?? ""
                    return .text(
                        422,
                        "the consistency proof from size \(old) to \(cp.size) does not verify against the checkpoint this witness cosigned\(kept)"
                    )
                }
            }
            var next = state
            next[cp.origin] = LogState(size: cp.size, root: cp.root)
            do { try Self.save(next, to: statePath) } catch {
                return .text(500, "cannot record the new checkpoint (\(error)); nothing was cosigned")
            }
            state = next
            // The note itself, for evidence should the log later contradict it.
            do {
                try FileOps.replaceFile(notePath(cp.origin), contents: Array(note.utf8), mode: 0o600)
            } catch {
                return .text(500, "cannot keep the cosigned note (\(error)); nothing was cosigned")
            }
            do {
                return Response(
                    status: 200, body: try cosigner.cosign(body: body, time: clock()),
                    contentType: "text/plain; charset=utf-8")
            } catch {
                return .text(500, "cannot cosign: \(error)")
            }
        }
    }

    /// `DIR/notes/` + the first 16 hex digits of SHA-256 of the origin.
    func notePath(_ origin: String) -> String {
        notesDirectory + "/" + String(SHA256.hash(Array(origin.utf8)).hex.prefix(16))
    }

    /// Writes `DIR/evidence/TIME-KIND-SIZE-ID`: the checkpoint received (signed by the log's
    /// key, checked before), the request's old size and proof, what this witness had cosigned
    /// and the note it cosigned then. Two notes signed by one key that cannot both hold prove
    /// the fork to anyone. Returns the words to add to the answer (called with `lock` held).
    func keepEvidence(
        _ kind: String, _ cp: Checkpoint, old: UInt64, proof: [Hash], note: String, known: LogState
    ) -> String {
        let name = "\(clock())-\(kind)-\(cp.size)-\(SHA256.hash(Array(note.utf8)).hex.prefix(12))"
        do {
            guard try FileOps.list(evidenceDirectory).count < Self.maxEvidence else {
                return " (not kept as evidence: this witness's evidence folder already holds \(Self.maxEvidence) files)"
            }
            let cosigned = (try FileOps.readFile(notePath(cp.origin), limit: 1 << 20)).map {
                String(decoding: $0, as: UTF8.self)
            }
            let text =
                "witness evidence: \(kind == "fork" ? "another root at the size this witness cosigned" : "a consistency proof that does not reach the root this witness cosigned")\n"
                + "log: \(cp.origin)\n"
                + "this witness had cosigned: size \(known.size), root \(Data(known.root.bytes).base64EncodedString())\n"
                + "received: old \(old), \(proof.count) proof line(s)\n"
                + proof.map { Data($0.bytes).base64EncodedString() + "\n" }.joined()
                + "\n--- the note this witness cosigned last for the log ---\n"
                + (cosigned ?? "(not kept: cosigned before this witness kept notes)\n")
                + "\n--- the checkpoint received, signed by the log's key ---\n" + note
            try FileOps.replaceFile(evidenceDirectory + "/" + name, contents: Array(text.utf8), mode: 0o600)
            // The answer goes to the log: it names the file, not where the witness keeps it.
            return " (kept as evidence: evidence/\(name) in this witness's state)"
        } catch {
            return " (could not be kept as evidence: \(error.code.rawValue))"
        }
    }

    /// The state file: one line per log, `origin size base64(root)`, sorted, then a line
    /// `crc32c <hex>` over the lines before it; replaced whole (temp, fsync, rename).
    static func save(_ state: [String: LogState], to path: String) throws {
        var text = ""
        for (origin, s) in state.sorted(by: { $0.key < $1.key }) {
            text += "\(origin) \(s.size) \(Data(s.root.bytes).base64EncodedString())\n"
        }
        text += "crc32c " + String(CRC32C.checksum(Array(text.utf8)), radix: 16) + "\n"
        try FileOps.replaceFile(path, contents: Array(text.utf8), mode: 0o600)
    }

    static func load(_ path: String) throws -> [String: LogState] {
        guard let bytes = try FileOps.readFile(path, limit: 16 << 20) else { return [:] }
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.last == "", lines.count >= 2, let crcLine = lines.dropLast().last, crcLine.hasPrefix("crc32c ")
        else {
            throw AuditError(
                "witness state \(path) is cut short: restore it from a backup (a witness that forgets what it cosigned can be rolled back)"
            )
        }
        lines.removeLast(2)
        let covered = lines.map { $0 + "\n" }.joined()
        guard UInt32(crcLine.dropFirst(7), radix: 16) == CRC32C.checksum(Array(covered.utf8)) else {
            throw AuditError("witness state \(path) fails its checksum: restore it from a backup")
        }
        var out: [String: LogState] = [:]
        for l in lines {
            let f = l.split(separator: " ")
            guard f.count == 3, let size = UInt64(f[1]), let raw = Data(base64Encoded: String(f[2])),
                let root = Hash(bytes: Array(raw))
            else {
                throw AuditError("witness state \(path) has a malformed line: \(l.prefix(120))")
            }
            out[String(f[0])] = LogState(size: size, root: root)
        }
        return out
    }
}
