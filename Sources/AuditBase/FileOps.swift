import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The durability primitives, and nothing else. Every fsync here has a reason written beside it;
/// segment rotation and sealing (Segment+Seal.swift) are ordered sequences of these calls.
public enum FileOps {
    static func errnoError(_ what: String, path: String, offset: Int64? = nil, err: Int32 = errno) -> AuditError {
        let text = String(cString: strerror(err))
        switch err {
        case ENOSPC, EDQUOT: return AuditError(.diskFull, "\(what): \(text)", path: path, offset: offset)
        case EACCES, EPERM, EROFS: return AuditError(.permission, "\(what): \(text)", path: path, offset: offset)
        default: return AuditError(.io, "\(what): \(text)", path: path, offset: offset)
        }
    }

    /// Creates a directory (and its parents) with `mode` if missing, and fsyncs the parent of
    /// each one it creates: without that, a crash could lose the directory with every synced
    /// file in it.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o750) throws(AuditError) {
        var built = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            let parent = built.isEmpty ? "/" : built
            built += "/" + part
            if FileOps.exists(built) { continue }
            let path = built
            if intercepted(.mkdir(path), { mkdir(path, mode) }) != 0 {
                if errno == EEXIST { continue }
                throw errnoError("cannot create directory", path: built)
            }
            try fsyncDirectory(parent)
        }
    }

    /// Opens `path` with `flags`, close-on-exec.
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o640) throws(AuditError) -> Int32 {
        var fd: Int32 = -1
        if flags & O_CREAT != 0 {
            _ = intercepted(.create(path)) {
                fd = Glibc.open(path, flags | O_CLOEXEC, mode)
                return fd < 0 ? -1 : 0
            }
        } else {
            fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        }
        if fd < 0 { throw errnoError("cannot open", path: path) }
        return fd
    }

    /// Opens `path` for reading and writing, creating it if missing; a new file's directory is
    /// fsync'd, so that the file's name survives a crash along with the data later synced in it.
    /// A caller that fsyncs the directory itself before anything depends on the name (one
    /// fsync for many new files) passes `syncDirectory: false`.
    public static func openOrCreate(
        _ path: String, mode: mode_t = 0o640, syncDirectory: Bool = true
    ) throws(AuditError) -> Int32 {
        if exists(path) { return try open(path, O_RDWR, mode: mode) }
        let fd = try open(path, O_RDWR | O_CREAT, mode: mode)
        guard syncDirectory else { return fd }
        do { try fsyncDirectory(directory(of: path)) } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Writes all of `bytes` at `offset`, retrying short writes and EINTR.
    public static func pwriteAll(
        _ fd: Int32, _ bytes: ArraySlice<UInt8>, at offset: Int64, path: String
    ) throws(AuditError) {
        var done = 0
        let op = FileOperation.write(path, offset: offset, count: bytes.count)
        let interceptor = interceptor(for: path)
        var limit = bytes.count
        switch interceptor?.before(op) ?? .proceed {
        case .proceed: break
        case .fail(let e):
            interceptor?.failed(op)
            throw errnoError("write failed", path: path, offset: offset, err: e)
        case .shortWrite(let n): limit = min(max(n, 0), bytes.count)
        }
        let result: AuditError? = bytes.withUnsafeBytes { buf -> AuditError? in
            while done < limit {
                guard let base = buf.baseAddress else { break }
                let n = pwrite(fd, base + done, limit - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    let e = errnoError("write failed", path: path, offset: offset + Int64(done))
                    interceptor?.failed(op)
                    return e
                }
                done += n
            }
            if limit < buf.count {
                interceptor?.failed(op)
                return errnoError("write failed", path: path, offset: offset + Int64(done), err: ENOSPC)
            }
            interceptor?.after(op, bytes: buf)
            return nil
        }
        if let result { throw result }
    }

    /// Reads exactly `count` bytes at `offset`; a short file is reported as corruption.
    public static func preadExact(_ fd: Int32, count: Int, at offset: Int64, path: String) throws(AuditError) -> [UInt8]
    {
        guard count >= 0 else { throw AuditError(.corrupt, "negative length", path: path, offset: offset) }
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        let failure: AuditError? = out.withUnsafeMutableBytes { buf -> AuditError? in
            while done < count {
                let n = pread(fd, buf.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    return errnoError("read failed", path: path, offset: offset + Int64(done))
                }
                if n == 0 {
                    return AuditError(
                        .corrupt, "file ends \(count - done) bytes early", path: path, offset: offset + Int64(done))
                }
                done += n
            }
            return nil
        }
        if let failure { throw failure }
        return out
    }

    /// The whole of a small file (a marker, a manifest, a JSON settings file): nil when it does
    /// not exist; an error when it cannot be read or is larger than `limit` bytes (a reader
    /// never allocates from a size it has not checked).
    public static func readFile(_ path: String, limit: Int = 16 << 20) throws(AuditError) -> [UInt8]? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw errnoError("cannot open", path: path)
        }
        defer { close(fd) }
        let n = try size(fd, path: path)
        guard n <= Int64(limit) else {
            throw AuditError(
                .corrupt, "file is \(n) bytes, more than the \(limit) this kind of file may hold", path: path, offset: 0
            )
        }
        return try preadExact(fd, count: Int(n), at: 0, path: path)
    }

    /// The file's size.
    public static func size(_ fd: Int32, path: String) throws(AuditError) -> Int64 {
        var st = stat()
        if fstat(fd, &st) != 0 { throw errnoError("cannot stat", path: path) }
        return Int64(st.st_size)
    }

    /// Flushes file data (not metadata that reading it back does not need). This is the
    /// point after which appended records survive power loss; acks wait for it.
    public static func fdatasync(_ fd: Int32, path: String) throws(AuditError) {
        if intercepted(.sync(path), { Glibc.fdatasync(fd) }) != 0 { throw errnoError("fdatasync failed", path: path) }
    }

    /// Flushes data and metadata: used on files about to be renamed into place, so the rename
    /// can never expose a file whose contents are not yet on disk.
    public static func fsync(_ fd: Int32, path: String) throws(AuditError) {
        if intercepted(.sync(path), { Glibc.fsync(fd) }) != 0 { throw errnoError("fsync failed", path: path) }
    }

    /// Flushes many files of one filesystem at once (syncfs(2) on `anchor`, a directory on
    /// it): one call instead of one fsync per file, for the many small files a seal touches.
    /// Each path is still reported as synced (or failed) one by one to interceptors.
    public static func syncFiles(_ paths: [String], anchor: String) throws(AuditError) {
        let fd = try open(anchor, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        if c_syncfs(fd) != 0 { throw errnoError("syncfs failed", path: anchor) }
        for p in paths where intercepted(.sync(p), { 0 }) != 0 { throw errnoError("fsync failed", path: p) }
    }

    /// Flushes a directory, making a file creation, rename or unlink in it durable. Without it,
    /// a new segment could vanish after power loss even though its data blocks were synced.
    public static func fsyncDirectory(_ path: String) throws(AuditError) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        if intercepted(.syncDirectory(path), { Glibc.fsync(fd) }) != 0 {
            throw errnoError("fsync of directory failed", path: path)
        }
    }

    /// Atomically replaces `to` with `from` (same directory). Callers fsync the directory after.
    public static func rename(_ from: String, _ to: String) throws(AuditError) {
        if intercepted(.rename(from, to), { Glibc.rename(from, to) }) != 0 {
            throw errnoError("rename to \(to) failed", path: from)
        }
    }

    /// Cuts a file back to `length`: used only on the open segment's torn tail at recovery.
    public static func truncate(_ fd: Int32, to length: Int64, path: String) throws(AuditError) {
        if intercepted(.truncate(path, length), { ftruncate(fd, off_t(length)) }) != 0 {
            throw errnoError("truncate failed", path: path, offset: length)
        }
    }

    /// Makes a file read-only for everyone (0444): sealed files are never written again.
    public static func makeReadOnly(_ fd: Int32, path: String) throws(AuditError) {
        if intercepted(.chmod(path, 0o444), { fchmod(fd, 0o444) }) != 0 {
            throw errnoError("chmod 0444 failed", path: path)
        }
    }

    /// Removes a file; a missing file is not an error.
    public static func unlink(_ path: String) throws(AuditError) {
        if !exists(path) { return }
        if intercepted(.unlink(path), { Glibc.unlink(path) }) != 0 && errno != ENOENT {
            throw errnoError("unlink failed", path: path)
        }
    }

    /// Replaces `path` with `contents`, all or nothing: 1. write `path.tmp` (created
    /// exclusively, with `mode`); 2. fsync it, so the rename can never expose a partial file;
    /// 3. rename it over `path` (the commit point); 4. fsync the directory, so the rename
    /// survives power loss. The one home of whole-file durable writes.
    public static func replaceFile(_ path: String, contents: [UInt8], mode: mode_t = 0o640) throws(AuditError) {
        let tmp = path + ".tmp"
        try unlink(tmp)
        try createFile(tmp, contents: contents, mode: mode)
        try rename(tmp, path)
        try fsyncDirectory(directory(of: path))
    }

    /// Creates the new file `path` (exclusively, with `mode`) holding `contents`, and fsyncs
    /// it. The caller renames it into place or fsyncs its directory.
    public static func createFile(_ path: String, contents: [UInt8], mode: mode_t) throws(AuditError) {
        let fd = try open(path, O_WRONLY | O_CREAT | O_EXCL, mode: mode)
        let f = FileHandleRef(fd: fd, path: path)
        // The mode given to open(2) is masked by the umask; a key or a sealed file needs exactly `mode`.
        if intercepted(.chmod(path, mode), { fchmod(f.fd, mode) }) != 0 { throw errnoError("chmod failed", path: path) }
        try pwriteAll(f.fd, contents[...], at: 0, path: path)
        try fsync(f.fd, path: path)
    }

    /// The directory part of `path` ("." for a bare file name).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// True if `path` exists.
    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// The names in a directory (not `.` or `..`).
    public static func list(_ path: String) throws(AuditError) -> [String] {
        guard let dir = opendir(path) else { throw errnoError("cannot list directory", path: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let ent = readdir(dir) {
            let name = entryName(ent)
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The name in a directory entry, read in place up to its terminating NUL.
    ///
    /// Never copy `ent.pointee.d_name`: the kernel packs entries by their real length, so the
    /// last entry of readdir's buffer can end a few bytes after its name, and a copy of the
    /// declared 256-byte array reads past the buffer (a SIGSEGV when that is the end of a
    /// mapped heap: the verifier crashed so about one run in twenty).
    static func entryName(_ ent: UnsafePointer<dirent>) -> String {
        let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name) ?? 19
        return String(cString: UnsafeRawPointer(ent).advanced(by: offset).assumingMemoryBound(to: CChar.self))
    }

    /// True when a process (this one included, through another descriptor) holds the
    /// exclusive lock `lockExclusive` takes on `path`: a running daemon serves that directory.
    public static func isLocked(_ path: String) -> Bool {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return errno == EWOULDBLOCK
    }

    /// Takes an exclusive advisory lock on `path` (created if missing), or throws `.locked`.
    /// The lock lives as long as the returned descriptor and dies with the process, so a
    /// crashed daemon never leaves the directory locked. A lock held for a moment longer than
    /// its holder (a child forked by a thread of the holder keeps a copy of the descriptor
    /// until it execs) is waited for, up to `patience` seconds.
    public static func lockExclusive(_ path: String, patience: Double = 2) throws(AuditError) -> Int32 {
        let fd = try open(path, O_RDWR | O_CREAT, mode: 0o640)
        let deadline = Date().addingTimeInterval(patience)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EWOULDBLOCK && Date() < deadline {
                usleep(10_000)
                continue
            }
            close(fd)
            if e == EWOULDBLOCK { throw AuditError(.locked, "another process holds the lock", path: path) }
            throw errnoError("cannot lock", path: path, err: e)
        }
        return fd
    }
}

/// An open file descriptor closed when the last reference goes away, so a reader may keep
/// reading a segment that the sealer has meanwhile replaced.
public final class FileHandleRef: @unchecked Sendable {
    /// The descriptor.
    public let fd: Int32
    /// The path it was opened from.
    public let path: String

    /// Takes ownership of `fd`.
    public init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { if fd >= 0 { close(fd) } }
}

/// syncfs(2), which Glibc's module map leaves out (it needs _GNU_SOURCE).
@_silgen_name("syncfs") private func c_syncfs(_ fd: Int32) -> Int32
