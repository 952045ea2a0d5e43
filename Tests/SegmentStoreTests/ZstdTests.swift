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
