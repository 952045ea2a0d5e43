import Foundation
import Testing

@testable import AuditBase

/// A file's SHA-256 read a MiB at a time is the digest of its bytes, across chunk edges.
@Suite struct FileHashTests {
    @Test func aFileHashesAsItsBytesDo() throws {
        let dir = NSTemporaryDirectory() + "filehash-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for size in [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 17] {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
            let path = dir + "/f\(size)"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            #expect(try SHA256.hash(file: path) == SHA256.hash(bytes), "size \(size)")
        }
        #expect(try SHA256.hash(file: dir + "/missing") == nil)
        // The empty string's digest, a published value.
        #expect(
            try SHA256.hash(file: dir + "/f0")?.hex
                == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}
