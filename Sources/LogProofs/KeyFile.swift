import AuditBase
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The checkpoint signing key on disk: one line, the signer key text, mode 0600, kept apart
/// from the data directory (it is never exported, and verification never needs it).
public enum KeyFile {
    /// Loads the key at `path`, or generates one named `name` there if none exists.
    /// Refuses a key file that others can read.
    public static func loadOrCreate(path: String, name: String) throws -> (NoteSigner, created: Bool) {
        if FileOps.exists(path) { return (try load(path: path), false) }
        let signer = try NoteSigner.generate(name: name)
        let dir = FileOps.directory(of: path)
        try FileOps.makeDirectory(dir, mode: 0o700)
        try FileOps.createFile(path, contents: Array((signer.text + "\n").utf8), mode: 0o600)
        try FileOps.fsyncDirectory(dir)
        return (signer, true)
    }

    /// Loads the key at `path`.
    public static func load(path: String) throws -> NoteSigner {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw AuditError("cannot read signing key \(path): \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & 0o077 == 0 else {
            throw AuditError(
                "signing key \(path) is readable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))); run `chmod 600 \(path)`"
            )
        }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw AuditError("cannot read signing key \(path): \(error.localizedDescription)")
        }
        do { return try NoteSigner(text) } catch {
            throw AuditError("signing key \(path) is malformed: \(error.description)")
        }
    }
}
