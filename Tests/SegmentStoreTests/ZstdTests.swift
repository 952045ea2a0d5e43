import CZstd
import Foundation
import Testing

@testable import AuditBase
@testable import SegmentStore

/// Each thread compresses and decompresses with contexts of its own (kept, not made per call):
/// the bytes are libzstd's one-shot call's, whatever threads run at once and in any order.
@Suite struct ZstdTests {
    @Test func keptContextsGiveTheOneShotBytesOnManyThreadsAtOnce() throws {
        // Blocks of every size class the store writes, at the levels it uses (1 open, 6 sealed).
        let inputs: [[UInt8]] = (0..<24).map { i in
            Array((0..<(1 << (6 + i % 11))).flatMap { "{\"n\":\($0),\"org\":\"org_\(i)\"}".utf8 }.prefix(70_000))
        }
        func oneShot(_ input: [UInt8], _ level: Int32) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
            let n = input.withUnsafeBytes { s in
                out.withUnsafeMutableBytes { ZSTD_compress($0.baseAddress, $0.count, s.baseAddress, s.count, level) }
            }
            return Array(out.prefix(n))
        }
        let expected = inputs.map { ($0, oneShot($0, 1), oneShot($0, 6)) }
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for round in 0..<20 {
                for (k, (input, one, six)) in expected.enumerated().shuffled() {
                    let level: Int32 = (t + round + k) % 2 == 0 ? 1 : 6
                    do {
                        let z = try Zstd.compress(input[...], level: level)
                        let back = try Zstd.decompress(z[...], rawSize: input.count)
                        if z != (level == 1 ? one : six) || back != input {
                            failures.mutate { $0.append("thread \(t) input \(k) level \(level)") }
                        }
                    } catch {
                        failures.mutate { $0.append("thread \(t) input \(k): \(error)") }
                    }
                }
            }
        }
        #expect(failures.value.isEmpty, "\(failures.value.prefix(5))")
        // A payload that does not expand to its stated size is refused, and the thread's
        // context serves the next call as before.
        let z = try Zstd.compress(inputs[3][...], level: 6)
        #expect(throws: ZstdError.self) { try Zstd.decompress(z[...], rawSize: inputs[3].count + 1) }
        #expect(throws: ZstdError.self) { try Zstd.decompress(z.dropLast(3), rawSize: inputs[3].count) }
        #expect(try Zstd.decompress(z[...], rawSize: inputs[3].count) == inputs[3])
    }
}

/// Small open-segment blocks are stored in raw zstd blocks (format-spec.md §2.2): a frame any
/// zstd decoder expands, at every size where its header changes form.
@Suite struct StoredFrameTests {
    @Test func libzstdExpandsAStoredFrameAtEveryHeaderBoundary() throws {
        let sizes = [0, 1, 255, 256, 257, 65_535, 65_791, 65_792, 65_793, 131_071, 131_072, 131_073, 300_000]
        for n in sizes {
            let input = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
            let frame = Zstd.stored(input[...])
            // libzstd's own reading: the content size it declares, then the bytes.
            let declared = frame.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
            #expect(declared == UInt64(n), "size \(n)")
            var back = [UInt8](repeating: 0xAA, count: n + 1)
            let got = frame.withUnsafeBytes { f in
                back.withUnsafeMutableBytes { ZSTD_decompress($0.baseAddress, $0.count, f.baseAddress, f.count) }
            }
            #expect(ZSTD_isError(got) == 0 && got == n, "size \(n)")
            #expect(Array(back.prefix(n)) == input, "size \(n)")
            #expect(try Zstd.decompress(frame[...], rawSize: n) == input, "size \(n)")
            // Nothing compressed: the frame header, 3 bytes a 128 KiB block, the bytes.
            let headerBytes = 5 + (n < 256 ? 1 : n < 65_792 ? 2 : 4)
            #expect(frame.count == headerBytes + 3 * max(1, (n + 131_071) / 131_072) + n, "size \(n)")
        }
        // Cut short or one byte too long, it is refused like any damaged payload.
        let frame = Zstd.stored([UInt8](repeating: 7, count: 1000)[...])
        #expect(throws: ZstdError.self) { try Zstd.decompress(frame.dropLast()[...], rawSize: 1000) }
        #expect(throws: ZstdError.self) { try Zstd.decompress((frame + [0])[...], rawSize: 1000) }
    }

    @Test func smallOpenBlocksAreStoredAndReadBackBeforeAndAfterTheSeal() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = records(300)
        var o = SegmentStoreOptions()
        o.rotateBytes = 1 << 30
        o.fillAhead = 0
        do {
            let s = try SegmentStore(directory: dir, options: o)
            // One record a group (stored), then groups of 100 (over 4 KiB: compressed).
            for i in 0..<100 {
                _ = try s.write([input[i]])
                try s.sync()
            }
            _ = try s.write(Array(input[100..<200]))
            _ = try s.write(Array(input[200...]))
            try s.sync()
        }
        // The blocks as the file holds them: a stored one is as long as its records, plus the
        // frame's few bytes; a compressed one is shorter.
        let path = dir + "/" + SegmentNames.open(0)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var at = SegmentFormat.headerSize
        var stored = 0
        var compressed = 0
        while at + 44 <= bytes.count, bytes[at] != 0 {
            let h = try BlockHeader.parse(bytes[at..<at + 44])
            if Int(h.payloadLength) <= Int(h.rawLength) + 9 && Int(h.payloadLength) > Int(h.rawLength) {
                stored += 1
            } else if h.payloadLength < h.rawLength {
                compressed += 1
            }
            at += 44 + Int(h.payloadLength)
        }
        #expect(stored == 100)
        #expect(compressed == 2)
        // Recovered and read, then sealed and read again.
        let s = try SegmentStore(directory: dir, options: o)
        #expect(s.recovery.recordsKept == 300 && s.recovery.bytesCut == 0)
        for i in [0, 1, 57, 99, 100, 250, 299] { #expect(try s.read(seq: UInt64(i)).payload == input[i].payload) }
        try s.rotate()
        try s.sealRotated()
        #expect(s.segments().first?.state == .sealed)
        for i in [0, 1, 57, 99, 100, 250, 299] { #expect(try s.read(seq: UInt64(i)).payload == input[i].payload) }
    }
}
