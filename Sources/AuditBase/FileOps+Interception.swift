import Foundation

/// A durable file operation, as the interception seam sees it (fault injection and crash-state
/// recording in tests). Reads are not operations: they change nothing.
public enum FileOperation: Sendable, Equatable {
    /// A file created (opened with `O_CREAT`).
    case create(String)
    /// `count` bytes written at `offset`.
    case write(String, offset: Int64, count: Int)
    /// `fsync` or `fdatasync` of a file.
    case sync(String)
    /// `fsync` of a directory.
    case syncDirectory(String)
    /// A rename.
    case rename(String, String)
    /// An unlink.
    case unlink(String)
    /// A file cut to a length.
    case truncate(String, Int64)
    /// A mode change.
    case chmod(String, mode_t)
    /// A directory created.
    case mkdir(String)

    /// The path the operation acts on (the source of a rename).
    public var path: String {
        switch self {
        case .create(let p), .write(let p, _, _), .sync(let p), .syncDirectory(let p), .unlink(let p),
            .truncate(let p, _), .chmod(let p, _), .mkdir(let p):
            return p
        case .rename(let p, _): return p
        }
    }
}

/// What an interceptor lets an operation do.
public enum FileFault: Sendable, Equatable {
    /// Carry it out.
    case proceed
    /// Fail it with `errno`, changing nothing.
    case fail(Int32)
    /// For a write: write only the first `n` bytes, then fail with `ENOSPC`.
    case shortWrite(Int)
}

/// Sees every durable file operation under one directory before it happens (and may fail
/// it), and after it: `after` once it succeeded (with the bytes of a write), `failed` once
/// it did not. Exactly one of the two follows each `before`, on the same thread, so an
/// interceptor may hold a lock from one to the other and see operations in their real order.
public protocol FileInterceptor: AnyObject, Sendable {
    /// Decides the fate of `op`.
    func before(_ op: FileOperation) -> FileFault
    /// `op` happened; `bytes` holds what a write wrote.
    func after(_ op: FileOperation, bytes: UnsafeRawBufferPointer?)
    /// `op` did not happen (failed by the system or by `before`), or happened in part.
    func failed(_ op: FileOperation)
}

extension FileInterceptor {
    /// Nothing to do by default.
    public func failed(_ op: FileOperation) {}
}

extension FileOps {
    private static let interceptLock = NSLock()
    nonisolated(unsafe) private static var interceptors: [(String, FileInterceptor)] = []
    nonisolated(unsafe) private static var anyInterceptor = false

    /// Routes every durable operation on a path under `directory` through `interceptor` until
    /// `stopIntercepting(directory)`. Other directories are untouched, so tests may run side by
    /// side. Production code never installs one.
    public static func intercept(_ directory: String, with interceptor: FileInterceptor) {
        interceptLock.withLock {
            interceptors.append((directory.hasSuffix("/") ? directory : directory + "/", interceptor))
            anyInterceptor = true
        }
    }

    /// Stops routing operations under `directory`.
    public static func stopIntercepting(_ directory: String) {
        let d = directory.hasSuffix("/") ? directory : directory + "/"
        interceptLock.withLock {
            interceptors.removeAll { $0.0 == d }
            anyInterceptor = !interceptors.isEmpty
        }
    }

    static func interceptor(for path: String) -> FileInterceptor? {
        guard interceptLock.withLock({ anyInterceptor }) else { return nil }
        return interceptLock.withLock { interceptors.first { path.hasPrefix($0.0) || path + "/" == $0.0 }?.1 }
    }

    /// Runs `body` (the real system call, returning 0 or -1 with errno set) unless an
    /// interceptor fails it; reports success to the interceptor.
    static func intercepted(_ op: FileOperation, _ body: () -> Int32) -> Int32 {
        guard let i = interceptor(for: op.path) else { return body() }
        switch i.before(op) {
        case .fail(let e):
            i.failed(op)
            errno = e
            return -1
        case .proceed, .shortWrite:
            let r = body()
            let e = errno
            if r == 0 { i.after(op, bytes: nil) } else { i.failed(op) }
            errno = e
            return r
        }
    }
}
