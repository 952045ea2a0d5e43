import AuditBase
import Foundation
import Testing

/// AES-256-CTR as the personal store seals value rows (format-spec.md §5.4.2): NIST's known
/// answer (whose counter carries across a byte), and in place the same as through a copy.
@Suite struct AESCTRTests {
    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = hex.filter { !$0.isWhitespace }.makeIterator()
        while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16) ?? 0) }
        return out
    }

    /// NIST SP 800-38A F.5.5 (CTR-AES256.Encrypt).
    @Test func nistsKnownAnswer() {
        let key = Self.bytes("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
        let iv = Self.bytes("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
        let plain = Self.bytes(
            """
            6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
            30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710
            """)
        let cipher = Self.bytes(
            """
            601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5
            2b0930daa23de94ce87017ba2d84988d dfc9c58db67aada613c2dd08457941a6
            """)
        var inPlace = plain
        #expect(AESCTR.crypt(inPlace: &inPlace, from: 0, key: key, iv: iv[...]))
        #expect(inPlace == cipher)
        #expect(AESCTR.crypt(plain, key: key, iv: iv[...]) == cipher)
        #expect(AESCTR.crypt(cipher, key: key, iv: iv[...]) == plain)
    }

    /// In place, from any offset, the same bytes as a copy: rows are sealed in their buffers.
    @Test func inPlaceIsTheSameAsACopy() {
        var g = SystemRandomNumberGenerator()
        for round in 0..<200 {
            let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }
            let iv =
                round == 0
                ? [UInt8](repeating: 0xFF, count: 16) : (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }
            let n = round < 40 ? round : Int.random(in: 0...700, using: &g)
            let from = Int.random(in: 0...min(n, 40), using: &g)
            let data = (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
            var a = data
            #expect(AESCTR.crypt(inPlace: &a, from: from, key: key, iv: iv[...]))
            #expect(a.prefix(from) == data.prefix(from))
            #expect(Array(a.dropFirst(from)) == AESCTR.crypt(Array(data.dropFirst(from)), key: key, iv: iv[...]))
        }
    }

    /// Every event loop seals rows at once, each with its own context: on eight threads at
    /// once every row is what one thread alone makes of it, and the random bytes drawn beside
    /// them (a pool per thread) never repeat.
    @Test func manyThreadsAtOnceSealAsOneDoes() throws {
        let key = [UInt8](repeating: 7, count: 32)
        let data = (0..<300).map { UInt8(truncatingIfNeeded: $0) }
        let ivs = (0..<64).map { i in [UInt8](repeating: UInt8(i), count: 16) }
        let expected = ivs.map { AESCTR.crypt(data, key: key, iv: $0[...]) }
        let sealed = Locked([[UInt8]?](repeating: nil, count: 8 * 64))
        let drawn = Locked(Set<[UInt8]>())
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for round in 0..<200 {
                let i = (t * 7 + round) % 64
                if round < 64 {
                    let r = AESCTR.crypt(data, key: key, iv: ivs[round][...])
                    sealed.mutate { $0[t * 64 + round] = r }
                }
                _ = AESCTR.crypt(data, key: key, iv: ivs[i][...])
                if let r = try? SecureRandom.bytes(32) { drawn.mutate { _ = $0.insert(r) } }
            }
        }
        for t in 0..<8 {
            for i in 0..<64 { #expect(sealed.value[t * 64 + i] == expected[i]) }
        }
        #expect(drawn.value.count == 8 * 200)
    }

    /// Slices of a thread's random pool are never handed out twice and never change, across
    /// the pool's refills (each 16 KiB): a refill replaces the array the earlier slices hold.
    @Test func randomSlicesSurviveTheirPoolsRefills() throws {
        var kept: [(slice: ArraySlice<UInt8>, copy: [UInt8])] = []
        for _ in 0..<2_000 {
            let s = try SecureRandom.slice(24)
            #expect(s.count == 24)
            kept.append((s, Array(s)))
        }
        #expect(kept.allSatisfy { Array($0.slice) == $0.copy })
        #expect(Set(kept.map(\.copy)).count == kept.count)
    }

    /// A thread's object is its own, the same on each use, and released when the thread ends.
    @Test func perThreadObjectsAreEachThreadsOwn() {
        final class Box: Sendable {}
        let perThread = PerThread { Box() }
        let mine = perThread.value
        #expect(mine != nil && perThread.value === mine)
        nonisolated(unsafe) weak var theirs: Box?
        let done = DispatchSemaphore(value: 0)
        let t = Thread {
            theirs = perThread.value
            #expect(theirs != nil && theirs !== mine)
            done.signal()
        }
        t.start()
        done.wait()
        var released = false
        for _ in 0..<200 where !released {
            Thread.sleep(forTimeInterval: 0.01)
            released = theirs == nil
        }
        #expect(released, "a finished thread's object was never released")
    }

    /// `withValue` lends the same object `value` returns, made on first use on a new thread,
    /// and rethrows what its body throws.
    @Test func perThreadLendsEachThreadsOwnObject() throws {
        final class Box: Sendable {}
        let perThread = PerThread { Box() }
        let mine = perThread.value
        #expect(perThread.withValue { $0 === mine })
        struct Refused: Error {}
        #expect(throws: Refused.self) { try perThread.withValue { (_) throws(Refused) in throw Refused() } }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var sameThere = false
        nonisolated(unsafe) var otherThere = false
        Thread {
            let first = perThread.withValue { $0.map(ObjectIdentifier.init) }
            sameThere = first != nil && perThread.value.map(ObjectIdentifier.init) == first
            otherThere = first != mine.map(ObjectIdentifier.init)
            done.signal()
        }.start()
        done.wait()
        #expect(sameThere && otherThere)
    }
}
