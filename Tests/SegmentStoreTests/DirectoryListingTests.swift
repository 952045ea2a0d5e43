import Foundation
import Testing

@testable import AuditBase
@testable import SegmentStore

/// Issue 19 item 2: `auditctl verify` crashed about one run in twenty in `FileOps.list`.
@Suite struct DirectoryListingTests {
    /// A directory entry whose short name ends a few bytes before unmapped memory, as the last
    /// entry of readdir's buffer can: its name is read without touching the page after it.
    @Test func anEntryEndingAtTheEdgeOfMappedMemoryIsReadInPlace() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let base = mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            base != MAP_FAILED
        else {
            Issue.record("mmap failed: errno \(errno)")
            return
        }
        defer { munmap(base, 2 * page) }
        #expect(mprotect(base + page, page, PROT_NONE) == 0, "the guard page could not be protected")
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name) ?? 19
        let name = Array("00000000000000000042.posting".utf8) + [0]
        // The entry starts so that its name's NUL is the last mapped byte.
        let entry = base + page - nameOffset - name.count
        entry.initializeMemory(as: UInt8.self, repeating: 0, count: nameOffset)
        name.withUnsafeBytes { (entry + nameOffset).copyMemory(from: $0.baseAddress!, byteCount: name.count) }
        let read = FileOps.entryName(UnsafePointer(entry.assumingMemoryBound(to: dirent.self)))
        #expect(read == "00000000000000000042.posting")
    }

    /// Many threads listing one large directory (as the verifier's posting check does) see
    /// every name, every time.
    @Test func concurrentListingsOfALargeDirectoryAgree() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var expected: Set<String> = []
        for i in 0..<1_500 {
            let n = String(repeating: "n", count: i % 40) + "\(i)"
            FileManager.default.createFile(atPath: dir + "/" + n, contents: nil)
            expected.insert(n)
        }
        try await withThrowingTaskGroup(of: Set<String>.self) { g in
            for _ in 0..<8 { g.addTask { Set(try FileOps.list(dir)) } }
            for try await names in g { #expect(names == expected) }
        }
    }
}
