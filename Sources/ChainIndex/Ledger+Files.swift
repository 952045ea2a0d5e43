import AuditBase
import AuditEntries
import AuditIndex
import Foundation
import LogProofs
import LogTree
import SegmentStore

#if canImport(Glibc)
import Glibc
#endif

/// The small files of a data directory: the log's identity (`log.json`) and the org-state
/// snapshot (format-spec.md §7.2).
extension Ledger {
    struct Info: Codable {
        var format: Int
        var origin: String
        var verifier_key: String
        /// `commit` when new entries' personal fields are committed (format-spec.md §5.4);
        /// absent (logs before it) or `clear`, stored as sent.
        var personal_fields: String?
        /// Under `commit`, the log's size when it last began committing: every entry from it
        /// on is committed; entries before it may name people in the clear (§5.4.3).
        var committing_from: UInt64?
        /// The statements handing the log's key on (format-spec.md §8.8), oldest first;
        /// absent until the first.
        var key_successions: [String]?

        /// The log's keys: `verifier_key` and every succession from it, each checked.
        func keys() throws -> LogKeys {
            let original: NoteVerifier
            do { original = try NoteVerifier(verifier_key) } catch {
                throw AuditError(.corrupt, "log.json's verifier_key: \(error.description)")
            }
            do { return try LogKeys(trusting: original, successions: key_successions ?? []) } catch {
                throw AuditError(.corrupt, "log.json's key_successions: \(error.description)")
            }
        }
    }

    /// The log's identity, created if new; `personalFields` (when given) is recorded as the
    /// log's setting, so every process that writes to it (auditd, auditctl) follows it.
    static func loadOrCreateInfo(
        directory: String, verifier: NoteVerifier, personalFields: Bool?, keys: LogKeys? = nil
    ) throws -> Info {
        let path = DataDirectory(directory).info
        var info: Info
        let isNew = !FileOps.exists(path)
        if !isNew {
            info = try readInfo(directory: directory)
            let keys = try info.keys()
            guard keys.keys.contains(verifier) else {
                throw AuditError(
                    "the log's key is \(keys.current.text) (first \(info.verifier_key)), not \(verifier.text); start with the log's current key"
                )
            }
            guard let p = personalFields, (info.personal_fields == "commit") != p else { return info }
        } else {
            info = Info(format: 1, origin: verifier.name, verifier_key: (keys?.original ?? verifier).text)
            if let keys, !keys.successions.isEmpty { info.key_successions = keys.notes }
        }
        if let p = personalFields {
            info.personal_fields = p ? "commit" : "clear"
            // A new log commits from its first entry; one that switches to commit learns the
            // size it begins at once it is open (`Ledger.init`).
            info.committing_from = p && isNew ? 0 : nil
        }
        // Format 2: entries may hold committed personal fields (§5.4), which readers of
        // format 1 do not know; format 3: a subject's fields under one commitment (§5.4.1),
        // which readers of format 2 do not know. A log never goes back (it may hold such
        // entries).
        if info.personal_fields == "commit" { info.format = max(info.format, 3) }
        try writeInfo(info, directory: directory)
        return info
    }

    static func writeInfo(_ info: Info, directory: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileOps.replaceFile(DataDirectory(directory).info, contents: Array(try enc.encode(info)) + [0x0A])
    }

    static func readInfo(directory: String) throws -> Info {
        let path = DataDirectory(directory).info
        guard let data = try FileOps.readFile(path, limit: 1 << 16).map({ Data($0) }) else {
            throw AuditError(
                "\(directory) is not an audit log directory (no \(URL(fileURLWithPath: DataDirectory(directory).info).lastPathComponent))"
            )
        }
        let info: Info
        do { info = try JSONDecoder().decode(Info.self, from: data) } catch {
            throw AuditError("\(path) is malformed: \(error)")
        }
        guard (1...3).contains(info.format) else {
            throw AuditError(
                "\(path) says format \(info.format); this build reads formats 1 to 3: open it with the auditd that wrote it, or a newer one"
            )
        }
        return info
    }

    /// `key` and the successions from it that a log directory records (each checked: signed by
    /// the key it replaces, so a directory cannot make `key` trust another).
    public static func keys(directory: String, trusting key: NoteVerifier) throws -> LogKeys {
        do {
            return try LogKeys(trusting: key, successions: try readInfo(directory: directory).key_successions ?? [])
        } catch let e as Note.Failure {
            throw AuditError(.corrupt, "log.json's key_successions: \(e.description)")
        }
    }

    /// The keys recorded in a log directory: its first and the successions from it.
    public static func verifierKey(directory: String) throws -> LogKeys {
        try readInfo(directory: directory).keys()
    }

    /// The org-state snapshot (format-spec.md §7.2):
    ///     "AUDORGS1" end:u64 n:u32 (len:u8 org count:u64 lastSeq:u64)* crc32c:u32
    static func saveOrgState(_ path: String, end: UInt64, orgs: [String: OrgMark]) throws {
        var w = ByteWriter(capacity: 20 + orgs.count * 40)
        w.write(ChainFormat.orgStateMagic)
        w.write(end)
        w.write(UInt32(orgs.count))
        for (o, m) in orgs.sorted(by: { $0.key < $1.key }) {
            w.write(UInt8(o.utf8.count))
            w.write(Array(o.utf8))
            w.write(m.count)
            w.write(m.lastSeq)
        }
        w.write(CRC32C.checksum(w.bytes))
        try FileOps.replaceFile(path, contents: w.bytes)
    }

    /// The snapshot at `path`, nil when there is none; damage is corruption of the file at
    /// the offset where it shows (the verifier's view: recovery derives the state instead).
    public static func checkedOrgState(_ path: String) throws -> (end: UInt64, orgs: [String: OrgMark])? {
        guard let b = try FileOps.readFile(path, limit: 1 << 30) else { return nil }
        func bad(_ m: String, _ at: Int) -> AuditError {
            AuditError(.corrupt, "org-state snapshot: \(m)", path: path, offset: Int64(at))
        }
        guard b.count >= 8 + 8 + 4 + 4 else { throw bad("\(b.count) bytes is too short", 0) }
        let stored =
            UInt32(b[b.count - 4]) | UInt32(b[b.count - 3]) << 8 | UInt32(b[b.count - 2]) << 16 | UInt32(b[b.count - 1])
            << 24
        guard CRC32C.matches(CRC32C.checksum(b[..<(b.count - 4)]), stored) else {
            throw bad("checksum mismatch", b.count - 4)
        }
        var r = ByteReader(b, range: 0..<(b.count - 4))
        do {
            guard Array(try r.read(count: 8)) == ChainFormat.orgStateMagic else { throw bad("bad magic", 0) }
            let end = try r.readU64()
            let n = try r.readU32()
            var out: [String: OrgMark] = [:]
            for _ in 0..<n {
                let o = String(decoding: try r.read(count: Int(try r.readU8())), as: UTF8.self)
                out[o] = OrgMark(count: try r.readU64(), lastSeq: try r.readU64())
            }
            guard r.isAtEnd else { throw bad("\(r.remaining) bytes after the last org", r.offset) }
            return (end, out)
        } catch let e as AuditError {
            throw e
        } catch {
            throw bad("cut short", r.offset)
        }
    }

    /// The snapshot at `path`; missing, unreadable or damaged gives end 0 and no orgs, and the
    /// caller derives the state instead (format-spec.md §7.2).
    package static func loadOrgState(_ path: String) throws -> (UInt64, [String: OrgMark]) {
        guard let s = try? checkedOrgState(path) else { return (0, [:]) }
        return (s.end, s.orgs)
    }
}

extension Ledger {
    /// The segment store of data directory `dir`, opened with the segments that tier `retired`
    /// took out of it: the one way the layers above open segments.
    public static func segmentStore(
        _ dir: String, retired tier: any RetiredTier, options: SegmentStoreOptions = .init(), readOnly: Bool
    ) throws -> SegmentStore {
        let segments = DataDirectory(dir).segments
        let retired = FileOps.exists(segments) ? try tier.retired(inSegments: segments, readOnly: readOnly) : []
        return try SegmentStore(directory: segments, options: options, readOnly: readOnly, retired: retired)
    }
}
