import AuditBase
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process for tests, with the part of `Foundation.Process`'s interface the tests use,
/// spawned with posix_spawn(3) directly.
///
/// Why not `Process`: on Linux, swift-corelibs-foundation's `Process.run()` lists
/// `/proc/self/fd` and copies each entry's whole 256-byte `d_name`, reading past the end of
/// readdir's buffer; when that buffer ends a mapping, the test process dies with SIGSEGV
/// (swift-corelibs-foundation PR #5472, merged after the 6.3.1 toolchain). It killed a
/// clean-clone CI run here (`Process.run()` → `__memcpy_avx512_unaligned_erms`, "Bad pointer
/// dereference") — FileOps.list had the same bug (issue 19 item 2). This spawns without
/// listing anything: the child's descriptors above 2 are closed by
/// `posix_spawn_file_actions_addclosefrom_np`, its signals reset to their defaults.
public final class ChildProcess: @unchecked Sendable {
    /// The program.
    public var executableURL: URL?
    /// Its arguments (without the program name).
    public var arguments: [String] = []
    /// Its environment; nil: this process's.
    public var environment: [String: String]?
    /// Its working directory; nil: this process's.
    public var currentDirectoryURL: URL?
    /// A `Pipe` (the child gets one end; this process closes it), a `FileHandle`, or nil
    /// (inherited), as with `Process`.
    public var standardInput: Any?
    /// See `standardInput`.
    public var standardOutput: Any?
    /// See `standardInput`.
    public var standardError: Any?

    private let cond = NSCondition()
    private var pid: pid_t = 0
    private var status: Int32?

    /// Why a child ended.
    public enum TerminationReason: Sendable { case exit, uncaughtSignal }

    public init() {}

    /// The child's pid (0 before `run`).
    public var processIdentifier: Int32 { cond.withLock { pid } }

    /// True from `run` until the child has ended (and was reaped).
    public var isRunning: Bool { cond.withLock { pid != 0 && status == nil } }

    /// The exit status, or the signal that ended it.
    public var terminationStatus: Int32 {
        guard let s = cond.withLock({ status }) else { return -1 }
        return Self.exited(s) ? (s >> 8) & 0xff : s & 0x7f
    }

    /// Whether it exited or was killed by a signal.
    public var terminationReason: TerminationReason {
        guard let s = cond.withLock({ status }) else { return .exit }
        return Self.exited(s) ? .exit : .uncaughtSignal
    }

    private static func exited(_ s: Int32) -> Bool { s & 0x7f == 0 }

    struct SpawnFailed: Error, CustomStringConvertible { var description: String }

    /// Starts the child; a thread of its own reaps it.
    public func run() throws {
        guard let path = executableURL?.path else { throw SpawnFailed(description: "no executable") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var closeInParent: [FileHandle] = []
        for (slot, target) in [(standardInput, Int32(0)), (standardOutput, Int32(1)), (standardError, Int32(2))] {
            switch slot {
            case let p as Pipe:
                let child = target == 0 ? p.fileHandleForReading : p.fileHandleForWriting
                posix_spawn_file_actions_adddup2(&actions, child.fileDescriptor, target)
                closeInParent.append(child)
            case let h as FileHandle where h === FileHandle.nullDevice:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case let h as FileHandle:
                posix_spawn_file_actions_adddup2(&actions, h.fileDescriptor, target)
            default:
                break
            }
        }
        if let dir = currentDirectoryURL?.path { _ = c_addchdir(&actions, dir) }
        _ = c_addclosefrom(&actions, 3)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var all = sigset_t()
        var none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer { for p in argv + envp { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, path, &actions, &attr, argv, envp)
        guard rc == 0 else { throw SpawnFailed(description: "cannot start \(path): \(String(cString: strerror(rc)))") }
        for h in closeInParent { try? h.close() }
        let spawned = child
        cond.withLock { pid = spawned }
        let reaper = Thread { [self] in
            var s: Int32 = 0
            while waitpid(spawned, &s, 0) < 0 && errno == EINTR {}
            cond.withLock {
                status = s
                cond.broadcast()
            }
        }
        reaper.stackSize = 1 << 18
        reaper.start()
    }

    /// Blocks until the child has ended.
    public func waitUntilExit() {
        cond.lock()
        while pid != 0 && status == nil { cond.wait() }
        cond.unlock()
    }

    /// Sends SIGTERM.
    public func terminate() {
        let p = processIdentifier
        if p > 0 && isRunning { kill(p, SIGTERM) }
    }
}

// glibc ≥ 2.29 / 2.34 (Debian 12 has 2.36); the Glibc module map leaves them out (_GNU_SOURCE).
@_silgen_name("posix_spawn_file_actions_addchdir_np")
private func c_addchdir(
    _ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: UnsafePointer<CChar>
) -> Int32
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func c_addclosefrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32

extension ChildProcess {
    /// Runs `program` with `pause` set (a test-only environment variable at which the code
    /// waits), waits up to 30 s for `reached`, then kills it with SIGKILL and reaps it: a real
    /// crash at one chosen moment. Returns whether the moment was reached before the kill.
    public static func killed(
        _ program: String, _ arguments: [String], in directory: String, at pause: String,
        until reached: () -> Bool
    ) throws -> Bool {
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: program)
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging([pause: "60"]) { $1 }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(30)
        while !reached(), Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        let ok = reached()
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        return ok
    }
}
