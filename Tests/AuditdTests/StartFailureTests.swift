import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A start that fails for a reason outside the command line (the read port taken, the data
/// directory held by another process) says why and what to do, exits 1, and does not print
/// the usage text, as if the flags had been wrong (exit 64, EX_USAGE, tells a supervisor the
/// unit is misconfigured).
@Suite struct StartFailureTests {
    /// auditd with `args`, run until it exits (killed after 30 s): its status and its output.
    static func runToExit(_ args: [String], in dir: String) throws -> (status: Int32, text: String, exited: Bool) {
        let (status, text) = try runProgram(Daemon.product("auditd"), args, in: dir, seconds: 30)
        return (status, text, !text.contains("(killed after 30 s"))
    }

    /// A loopback listener on a port the kernel picks, held until `close`.
    static func listener() throws -> (fd: Int32, port: Int) {
        guard let (fd, port) = boundLoopbackSocket() else {
            throw DaemonFailed(message: "could not bind a loopback port: errno \(errno)")
        }
        guard listen(fd, 8) == 0 else {
            close(fd)
            throw DaemonFailed(message: "could not listen on loopback port \(port): errno \(errno)")
        }
        return (fd, port)
    }

    @Test func aTakenReadPortIsARuntimeFailureNotAUsageError() throws {
        let d = Daemon("port-taken")
        defer { d.cleanup() }
        let (fd, port) = try Self.listener()
        defer { close(fd) }
        let r = try Self.runToExit(
            ["--data", d.data, "--socket", d.socket, "--http-port", "\(port)", "--log-level", "warning"], in: d.root)
        #expect(r.exited, "auditd kept running with its read port taken:\n\(r.text)")
        #expect(r.text.contains("127.0.0.1:\(port) is in use by another process"), "\(r.text)")
        #expect(r.text.contains("--http-port"), "\(r.text)")
        #expect(!r.text.contains("Usage:"), "\(r.text)")
        #expect(r.status == 1, "exit status \(r.status):\n\(r.text)")
    }

    @Test func aDataDirectoryInUseIsARuntimeFailureNotAUsageError() throws {
        let d = Daemon("data-taken")
        defer { d.cleanup() }
        try d.start()
        let r = try Self.runToExit(
            ["--data", d.data, "--socket", d.root + "/second.sock", "--http-port", "0", "--log-level", "warning"],
            in: d.root)
        #expect(r.exited, "a second auditd ran on the same data directory:\n\(r.text)")
        #expect(r.text.contains("is in use by another process"), "\(r.text)")
        #expect(!r.text.contains("Usage:"), "\(r.text)")
        #expect(r.status == 1, "exit status \(r.status):\n\(r.text)")
    }

    /// The bound those checks rely on: a program that does not exit is killed, and says so.
    @Test func aProgramThatDoesNotExitIsKilledAtItsBound() throws {
        let started = Date()
        let (status, text) = try runProgram("/bin/sleep", ["60"], seconds: 1)
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(status == SIGKILL, "status \(status)")
        #expect(text.contains("killed after 1 s"), "\(text)")
    }
}
