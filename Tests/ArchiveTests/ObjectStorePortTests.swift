import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The test gateway's ports: a port taken by anyone else (another test run's gateway, or an
/// outgoing connection) is never chosen, and none is in the kernel's ephemeral range, from
/// which a concurrent test's connection could take it between the check and the gateway's bind.
@Suite struct ObjectStorePortTests {
    @Test func aTakenPortIsSkippedAndNoneIsEphemeral() throws {
        let range =
            (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
            .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) } ?? [32768, 60999]
        // Hold a listener on a port, and ask for a pair starting there.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var held = 0
        for p in stride(from: 12_000, to: 13_000, by: 2) {
            addr.sin_port = in_port_t(UInt16(p)).bigEndian
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            if ok, listen(fd, 1) == 0 {
                held = p
                break
            }
        }
        #expect(held > 0, "no port to hold for the test")
        #expect(!ObjectStore.isFree(held))
        let chosen = try #require(ObjectStore.freePortPair(preferring: held))
        #expect(chosen != held && chosen + 1 != held)
        #expect(ObjectStore.isFree(chosen) && ObjectStore.isFree(chosen + 1))
        #expect(chosen + 1 < range[0], "port \(chosen) is in the ephemeral range \(range)")
        // The old choice (20000 + pid % 20000) reached into that range for a third of pids.
        #expect(ObjectStore.freePortPair(preferring: 39_999).map { $0 + 1 < range[0] } == true)
    }

    @Test func theGatewayScriptInheritsNoDescriptorOfTheTestProcess() throws {
        // A pipe open in this process while the script (whose daemons outlive the run) starts.
        let held = Pipe()
        defer {
            try? held.fileHandleForReading.close()
            try? held.fileHandleForWriting.close()
        }
        let dir = NSTemporaryDirectory() + "auditlog-fds-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "ls /proc/$$/fd\n".write(toFile: dir + "/fds.sh", atomically: true, encoding: .utf8)
        let status = try ObjectStore.runScript(dir + "/fds.sh", [], stdout: dir + "/out", stderr: dir + "/err")
        #expect(status == 0)
        let fds = Set(
            try String(contentsOfFile: dir + "/out", encoding: .utf8).split(separator: "\n").compactMap { Int32($0) })
        #expect(fds.isSuperset(of: [0, 1, 2]), "\(fds)")
        // bash keeps the script itself open on a high descriptor (255); nothing else may pass.
        #expect(
            fds.subtracting([0, 1, 2, 255]).isEmpty,
            "the script inherited descriptors \(fds.subtracting([0, 1, 2, 255]).sorted())")
        #expect(!fds.contains(held.fileHandleForWriting.fileDescriptor))
    }
}
