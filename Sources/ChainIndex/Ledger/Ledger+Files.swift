import Foundation
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
    }

    static func loadOrCreateInfo(directory: String, signer: NoteSigner) throws -> Info {
        let path = directory + "/" + infoFile
        if FileOps.exists(path) {
            let info = try readInfo(directory: directory)
            guard info.verifier_key == signer.verifier.text else {
                throw LedgerError("the signing key (\(signer.verifier.text)) is not this log's key (\(info.verifier_key)); start with the key the log was created with")
            }
            return info
        }
        let info = Info(format: 1, origin: signer.name, verifier_key: signer.verifier.text)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileOps.replaceFile(path, contents: Array(try enc.encode(info)) + [0x0A])
        return info
    }

    static func readInfo(directory: String) throws -> Info {
        let path = directory + "/" + infoFile
        guard let data = try FileOps.readFile(path, limit: 1 << 16).map({ Data($0) }) else {
            throw LedgerError("\(directory) is not an audit log directory (no \(infoFile))")
        }
        do { return try JSONDecoder().decode(Info.self, from: data) } catch {
            throw LedgerError("\(path) is malformed: \(error)")
        }
    }

    /// The verifier key recorded in a log directory.
    public static func verifierKey(directory: String) throws -> NoteVerifier {
        try NoteVerifier(try readInfo(directory: directory).verifier_key)
    }

    /// The org-state snapshot (format-spec.md §7.2):
    ///     "AUDORGS1" end:u64 n:u32 (len:u8 org count:u64 lastSeq:u64)* crc32c:u32
    static func saveOrgState(_ path: String, end: UInt64, orgs: [String: (UInt64, UInt64)]) throws {
        var w = ByteWriter(capacity: 20 + orgs.count * 40)
        w.write(ChainFormat.orgStateMagic)
        w.write(end)
        w.write(UInt32(orgs.count))
        for (o, (c, l)) in orgs.sorted(by: { $0.key < $1.key }) {
            w.write(UInt8(o.utf8.count)); w.write(Array(o.utf8)); w.write(c); w.write(l)
        }
        w.write(CRC32C.checksum(w.bytes))
        try FileOps.replaceFile(path, contents: w.bytes)
    }

    static func loadOrgState(_ path: String) throws -> (UInt64, [String: (UInt64, UInt64)]) {
        // Missing, unreadable or damaged: the caller derives the state instead (§7.2).
        guard let b = try? FileOps.readFile(path, limit: 1 << 30) else { return (0, [:]) }
        guard b.count >= 24, CRC32C.matches(CRC32C.checksum(b[..<(b.count - 4)]), UInt32(b[b.count - 4]) | UInt32(b[b.count - 3]) << 8 | UInt32(b[b.count - 2]) << 16 | UInt32(b[b.count - 1]) << 24)
        else { return (0, [:]) } // damaged snapshot: fall back to a full replay
        var r = ByteReader(b, range: 0..<(b.count - 4))
        do {
            guard Array(try r.read(count: 8)) == ChainFormat.orgStateMagic else { return (0, [:]) }
            let end = try r.readU64()
            let n = try r.readU32()
            var out: [String: (UInt64, UInt64)] = [:]
            for _ in 0..<n {
                let o = String(decoding: try r.read(count: Int(try r.readU8())), as: UTF8.self)
                out[o] = (try r.readU64(), try r.readU64())
            }
            return (end, out)
        } catch { return (0, [:]) }
    }
}

/// `DATA/auditd.socket`: the absolute path of the ingest socket of the daemon serving the
/// directory, written at its start and removed at its clean stop, so that `auditctl` writes
/// its audit entries through it from any working directory.
public enum DaemonSocketFile {
    /// The file name in the data directory.
    public static let name = "auditd.socket"
}
