import Foundation
import Testing

/// The daemon allocates with jemalloc under the settings `Sources/CAllocator/allocator.c`
/// embeds (two arenas; dirty pages returned after a second): the README's CPU and peak-memory
/// figures were measured so, and a build that lost the link would quietly fall back to glibc.
@Suite struct AllocatorTests {
    @Test func theDaemonRunsOnJemallocWithItsEmbeddedSettings() throws {
        let d = Daemon("allocator")
        defer { d.cleanup() }
        // jemalloc prints its options to standard error (the daemon's log here) as it exits.
        d.environment = ["MALLOC_CONF": "stats_print:true"]
        try d.start()
        let pid = try #require(d.process?.processIdentifier)
        // Read to its end: /proc reports no size, and a read of a size's worth stops short.
        let file = try #require(FileHandle(forReadingAtPath: "/proc/\(pid)/maps"))
        defer { try? file.close() }
        let maps = String(decoding: try file.readToEnd() ?? Data(), as: UTF8.self)
        #expect(maps.contains("libjemalloc.so"), "auditd is not linked with jemalloc (Package.swift, CAllocator)")
        #expect(d.stop() == 0, "\(d.logTail())")
        let log = try String(contentsOfFile: d.logPath, encoding: .utf8)
        #expect(log.contains("opt.narenas: 2"), "the embedded malloc_conf was not read: \(d.logTail())")
        #expect(log.contains("opt.dirty_decay_ms: 1000"), "\(d.logTail())")
    }
}
