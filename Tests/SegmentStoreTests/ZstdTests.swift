import CZstd
import Foundation
import Testing

@testable import AuditBase
@testable import SegmentStore

/// Each thread compresses and decompresses with contexts of its own (kept, not made per call):
/// the bytes are libzstd's one-shot call's, whatever threads run at once and in any order.
@Suite struct ZstdTests {
    @Test func keptContextsGiveTheOneShotBytesOnManyThreadsAtOnce() throws {
        // Blocks of every size class the store writes, at the levels it uses (1 open, 5 sealed,
        // tuned: `Zstd.tuned`).
        let inputs: [[UInt8]] = (0..<24).map { i in
            Array((0..<(1 << (6 + i % 11))).flatMap { "{\"n\":\($0),\"org\":\"org_\(i)\"}".utf8 }.prefix(70_000))
        }
        let expected = inputs.map { ($0, oneShot($0, 1), oneShot($0, 5, tuned: true)) }
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for round in 0..<20 {
                for (k, (input, one, five)) in expected.enumerated().shuffled() {
                    let level: Int32 = (t + round + k) % 2 == 0 ? 1 : 5
                    do {
                        let z = try Zstd.compress(input[...], level: level)
                        let back = try Zstd.decompress(z[...], rawSize: input.count)
                        if z != (level == 1 ? one : five) || back != input {
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
        let z = try Zstd.compress(inputs[3][...], level: 5)
        #expect(throws: ZstdError.self) { try Zstd.decompress(z[...], rawSize: inputs[3].count + 1) }
        #expect(throws: ZstdError.self) { try Zstd.decompress(z.dropLast(3), rawSize: inputs[3].count) }
        #expect(try Zstd.decompress(z[...], rawSize: inputs[3].count) == inputs[3])
    }
}

/// `input` compressed by a context made for the call, as libzstd's one-shot call does, or with
/// the seal's parameters (`Zstd.tuned`: searchLog and minMatch at least 5) set on it.
func oneShot(_ input: [UInt8], _ level: Int32, tuned: Bool = false) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
    let n = input.withUnsafeBytes { s in
        out.withUnsafeMutableBytes { d in
            guard tuned else { return ZSTD_compress(d.baseAddress, d.count, s.baseAddress, s.count, level) }
            let c = ZSTD_createCCtx()
            defer { ZSTD_freeCCtx(c) }
            let p = ZSTD_getCParams(level, UInt64(s.count), 0)
            _ = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)
            _ = ZSTD_CCtx_setParameter(c, ZSTD_c_searchLog, Int32(max(p.searchLog, 5)))
            _ = ZSTD_CCtx_setParameter(c, ZSTD_c_minMatch, Int32(max(p.minMatch, 5)))
            return ZSTD_compress2(c, d.baseAddress, d.count, s.baseAddress, s.count)
        }
    }
    return Array(out.prefix(n))
}

/// The seal's own parameters (`Zstd.tuned`) reach its frames, with a dictionary and without,
/// only at the levels whose match finder they are for, and every frame expands as any other.
@Suite struct SealParameterTests {
    /// Lines like the workload's: keys repeated, values drawn from small sets.
    func lines(_ n: Int, seed: UInt64) -> [[UInt8]] {
        var x = seed
        func pick(_ k: Int) -> Int {
            x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(x >> 33) % k
        }
        return (0..<n).map { i in
            Array(
                #"{"org":"org_\#(pick(40))","action":"\#(["user.login", "file.read", "role.grant", "key.rotate"][pick(4)])","actor":{"type":"human","id":"usr_\#(pick(5000))"},"outcome":"\#(pick(9) == 0 ? "failure" : "success")","n":\#(i)}"#
                    .utf8)
        }
    }

    @Test func theLevelsOfTheRowMatchFinderAreTunedAndNoOthers() {
        for level: Int32 in 1...19 {
            let p = ZSTD_getCParams(level, 64 << 10, 0)
            let rowBased = [ZSTD_greedy, ZSTD_lazy, ZSTD_lazy2].contains(p.strategy)
            let t = Zstd.tuned(p)
            #expect((t != nil) == rowBased, "level \(level)")
            if let t { #expect(t.searchLog >= 5 && t.minMatch == max(p.minMatch, 5) && t.strategy == p.strategy) }
        }
        // The open segment's level is never tuned: its blocks are libzstd's one-shot bytes.
        #expect(Zstd.tuned(ZSTD_getCParams(1, 64 << 10, 0)) == nil)
        #expect(Zstd.tuned(ZSTD_getCParams(5, 64 << 10, 0)) != nil)
    }

    @Test func tunedFramesDifferFromLibzstdsOwnAndExpandTheSame() throws {
        let block = Array(lines(600, seed: 7).joined().prefix(64 << 10))
        // Without a dictionary: level 5 is tuned, level 1 is the one-shot call's.
        let five = try Zstd.compress(block[...], level: 5)
        #expect(five == oneShot(block, 5, tuned: true))
        #expect(five != oneShot(block, 5))
        #expect(try Zstd.compress(block[...], level: 1) == oneShot(block, 1))
        #expect(try Zstd.decompress(five[...], rawSize: block.count) == block)
        // With a dictionary, as a seal compresses: the digested dictionary carries the tuning.
        let d = try #require(ZstdDictionary.train(samples: lines(4000, seed: 3).map { $0[...] }, capacity: 16 << 10))
        let tuned = try Zstd.compress(block[...], level: 5, encoder: try #require(d.encoder(level: 5)))
        let own = try Zstd.compress(block[...], level: 5, encoder: try #require(d.encoder(level: 5, tuned: false)))
        #expect(tuned != own)
        #expect(try Zstd.decompress(tuned[...], rawSize: block.count, dictionary: d) == block)
        #expect(try Zstd.decompress(own[...], rawSize: block.count, dictionary: d) == block)
        #expect(throws: ZstdError.self) { try Zstd.decompress(tuned[...], rawSize: block.count) }
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
