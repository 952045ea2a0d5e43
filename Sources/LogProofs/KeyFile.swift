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

    /// Tests only: seconds to wait before a staged key replaces the key file, so a test can
    /// kill the process after the log recorded a handover and before the file follows.
    static let pauseBeforePromote =
        ProcessInfo.processInfo.environment["AUDITLOG_TEST_PAUSE_BEFORE_KEY_FILE"].flatMap(Double.init) ?? 0

    /// Where a handover keeps the new key until the log records it (format-spec.md §8.8).
    public static func nextPath(_ path: String) -> String { path + ".next" }

    /// Keeps `signer` durably beside the key at `path` (`.next`, mode 0600) before a
    /// handover to it, so a crash after the log recorded the handover still finds it.
    public static func stage(_ signer: NoteSigner, path: String) throws {
        try FileOps.replaceFile(nextPath(path), contents: Array((signer.text + "\n").utf8), mode: 0o600)
    }

    /// Makes the staged key `key` the key at `path` (rename, directory fsync): the old key's
    /// file is replaced, since the log no longer signs with it. Done already (by `settle` in
    /// another process) is success.
    public static func promote(path: String, key: NoteVerifier) throws {
        if pauseBeforePromote > 0 { Thread.sleep(forTimeInterval: pauseBeforePromote) }
        if !FileOps.exists(nextPath(path)), (try? load(path: path))?.verifier == key { return }
        try FileOps.rename(nextPath(path), path)
        try FileOps.fsyncDirectory(FileOps.directory(of: path))
    }

    /// Before a log opens with the key at `path`: finishes a handover a stop interrupted. When
    /// the log's key in force (`current`, from its `log.json`) is the staged one, it replaces
    /// the file at `path`. A staged key the log never took over is left alone (a handover may
    /// be under way in the process that holds the log); the next rotation overwrites it.
    /// Returns what was done or found, in words (nil: nothing).
    public static func settle(path: String, current: NoteVerifier) throws -> String? {
        let next = nextPath(path)
        guard FileOps.exists(next) else { return nil }
        let staged = try load(path: next)
        guard staged.verifier == current else {
            return
                "\(next) holds a key the log has not taken over (\(staged.verifier.text)): a rotation that did not finish; rotate again, or remove it"
        }
        try promote(path: path, key: current)
        return "the log had handed its key on to \(current.text); \(next) now replaces \(path)"
    }
}
