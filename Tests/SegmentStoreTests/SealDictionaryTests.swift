import Foundation
import Testing

@testable import AuditBase
@testable import SegmentStore

/// Sealed segments compressed with a dictionary trained on their own records
/// (format-spec.md §2.4): smaller, read back exactly, and refused when the footer lies.
@Suite struct SealDictionaryTests {
    /// Entries shaped like the log's: JSON objects with repeated keys and varied values.
    func entries(_ n: Int, orgs: Int = 40) -> [StoreRecord] {
        var rng = SplitMix(seed: 7)
        let actions = [
            "auth.login.success", "repo.push", "credential.revealed", "agent.vm.provisioned", "access.denied",
        ]
        return (0..<n).map { i in
            let o = rng.next() % UInt64(orgs)
            let org = "org_\(o)"
            let json =
                #"{"action":"\#(actions[Int(rng.next() % 5)])","actor":{"id":"usr_\#(rng.next() % 5000)","type":"human"},"#
                + #""category":"authentication","metadata":{"attempt":\#(rng.next() % 9),"trace":"\#(String(rng.next(), radix: 36))"},"#
                + #""occurred_at":"2026-12-05T10:\#(10 + i % 50):00.\#(100 + i % 900)Z","org":"\#(org)","outcome":"success","#
                + #""received_at":"2026-12-05T10:\#(10 + i % 50):01.000Z","source":{"ip":"10.0.\#(rng.next() % 255).\#(i % 255)","service":"sso"},"#
                + #""writer":{"gid":1001,"uid":1001,"via":"socket"}}"#
            return StoreRecord(key: o + 1, payload: Array(json.utf8))
        }
    }

    /// Seals `input` in blocks of 4 KiB raw: small enough that blocks compressed alone repeat
    /// what a dictionary holds once (the daemon's 64 KiB blocks of real events gain about a
    /// fifth; these synthetic entries compress too well alone to show it at that size).
    func sealed(
        _ input: [StoreRecord], dictionarySize: Int, threads: Int = 1, in dir: String
    ) throws -> SealedSegment {
        var opts = SegmentStoreOptions()
        opts.dictionarySize = dictionarySize
        opts.sealThreads = threads
        opts.blockTarget = 4096
        let s = try SegmentStore(directory: dir, options: opts)
        for chunk in stride(from: 0, to: input.count, by: 500) {
            try s.write(Array(input[chunk..<min(input.count, chunk + 500)]))
            try s.sync()
        }
        try s.rotate()
        let path = try #require(try s.sealRotated().first?.path)
        return try SealedSegment(path: path)
    }

    @Test func aDictionaryShrinksTheSegmentAndEveryRecordReadsBack() throws {
        let input = entries(6000)
        let raw = input.reduce(0) { $0 + $1.payload.count }
        let a = temporaryDirectory()
        let b = temporaryDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: a)
            try? FileManager.default.removeItem(atPath: b)
        }
        let with = try sealed(input, dictionarySize: 64 << 10, in: a)
        let without = try sealed(input, dictionarySize: 0, in: b)
        #expect(!with.footer.dictionary.isEmpty)
        #expect(with.footer.dictionary.count <= raw / 64)
        #expect(without.footer.dictionary.isEmpty)
        let sizeWith = try FileOps.size(with.file.fd, path: with.path)
        let sizeWithout = try FileOps.size(without.file.fd, path: without.path)
        // The dictionary's own bytes included, the file is smaller.
        #expect(sizeWith < sizeWithout, "\(sizeWith) bytes with a dictionary, \(sizeWithout) without")
        let head = try FileOps.preadExact(with.file.fd, count: 8, at: with.footerOffset, path: with.path)
        #expect(head == Array("AUDFOOT2".utf8))
        let head0 = try FileOps.preadExact(without.file.fd, count: 8, at: without.footerOffset, path: without.path)
        #expect(head0 == Array("AUDFOOT1".utf8))
        let back = try with.readAll()
        #expect(back.map(\.payload) == input.map(\.payload))
        #expect(back.map(\.key) == input.map(\.key))
        // Through a reopened store too, record by record and by scan.
        let store = try SegmentStore(directory: a)
        for i in [0, 1, 2999, 5999] { #expect(try store.read(seq: UInt64(i)).payload == input[i].payload) }
        var n = 0
        try store.scan { r in
            #expect(r.payload == input[Int(r.seq)].payload)
            n += 1
            return true
        }
        #expect(n == 6000)
    }

    /// A dictionary trained for one seal is offered to the next ones of the store (training
    /// is the seal's dearest step) while it pays, and a new one trained after `reuses` more.
    @Test func theNextSealsReuseTheLastDictionaryWhileItPays() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var opts = SegmentStoreOptions()
        opts.blockTarget = 4096
        let s = try SegmentStore(directory: dir, options: opts)
        let input = entries(6000 * (SealDictionaries.reuses + 2))
        var dictionaries: [[UInt8]] = []
        for k in 0..<(SealDictionaries.reuses + 2) {
            try s.write(Array(input[(k * 6000)..<((k + 1) * 6000)]))
            try s.sync()
            try s.rotate()
            let path = try #require(try s.sealRotated().first?.path)
            let seg = try SealedSegment(path: path)
            #expect(try seg.readAll().map(\.payload) == input[(k * 6000)..<((k + 1) * 6000)].map(\.payload))
            dictionaries.append(seg.footer.dictionary)
        }
        #expect(dictionaries.allSatisfy { !$0.isEmpty })
        #expect(Set(dictionaries.prefix(SealDictionaries.reuses + 1)).count == 1, "trained once, then reused")
        #expect(dictionaries.last != dictionaries.first, "trained again after \(SealDictionaries.reuses) reuses")
    }

    @Test func aSmallSegmentHasNoDictionary() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 200 entries are about 80 KB: a 64th of that is below the 4 KiB floor.
        let seg = try sealed(entries(200), dictionarySize: 64 << 10, in: dir)
        #expect(seg.footer.dictionary.isEmpty)
        #expect(try seg.readAll().count == 200)
    }

    /// Rewrites the footer of the sealed file at `path` with `edit` and a checksum that
    /// matches, so only the footer's own rules can refuse it.
    func rewriteFooter(_ seg: SealedSegment, _ edit: (inout [UInt8]) -> Void) throws {
        let size = try FileOps.size(seg.file.fd, path: seg.path)
        var footer = try FileOps.preadExact(
            seg.file.fd, count: Int(size - seg.footerOffset) - SegmentFormat.trailerSize, at: seg.footerOffset,
            path: seg.path)
        edit(&footer)
        var w = ByteWriter(capacity: footer.count + SegmentFormat.trailerSize)
        w.write(footer)
        w.write(UInt64(seg.footerOffset))
        w.write(UInt32(footer.count))
        w.write(CRC32C.checksum(footer))
        w.write(SegmentFormat.trailerMagic)
        _ = chmod(seg.path, 0o644)
        let fd = try FileOps.open(seg.path, O_WRONLY)
        defer { close(fd) }
        try FileOps.truncate(fd, to: seg.footerOffset, path: seg.path)
        try FileOps.pwriteAll(fd, w.bytes[...], at: seg.footerOffset, path: seg.path)
    }

    @Test func aFooterWhoseDictionaryIsGoneOrChangedIsRefused() throws {
        let input = entries(6000)
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let seg = try sealed(input, dictionarySize: 64 << 10, in: dir)
        let n = seg.footer.dictionary.count
        let copy = dir + "/copy"
        try FileManager.default.copyItem(atPath: seg.path, toPath: copy)

        // Dropped (the footer says AUDFOOT1 and ends before it): no block decompresses.
        try rewriteFooter(seg) { f in
            f.replaceSubrange(0..<8, with: Array("AUDFOOT1".utf8))
            f.removeLast(n + 4)
        }
        let dropped = try SealedSegment(path: seg.path)
        #expect(dropped.footer.dictionary.isEmpty)
        let e1 = #expect(throws: AuditError.self) { try dropped.readBlock(0) }
        #expect(e1?.code == .corrupt)

        // Another dictionary (trained on other records): refused, never other bytes.
        try FileManager.default.removeItem(atPath: seg.path)
        try FileManager.default.copyItem(atPath: copy, toPath: seg.path)
        let restored = try SealedSegment(path: seg.path)
        let other = try #require(
            ZstdDictionary.train(samples: entries(6000, orgs: 3).map { $0.payload[...] }, capacity: n))
        try rewriteFooter(restored) { f in
            f.removeLast(n + 4)
            var w = ByteWriter(capacity: other.bytes.count + 4)
            w.write(UInt32(other.bytes.count))
            w.write(other.bytes)
            f.append(contentsOf: w.bytes)
        }
        let changed = try SealedSegment(path: seg.path)
        let e2 = #expect(throws: AuditError.self) { try changed.readAll() }
        #expect(e2?.code == .corrupt)

        // A dictionary length of zero, or one that runs past the footer, or bytes after it.
        for edit: (inout [UInt8]) -> Void in [
            { f in
                f.removeLast(n)
                f.replaceSubrange((f.count - 4)..<f.count, with: [0, 0, 0, 0])
            },
            { f in f.replaceSubrange((f.count - n - 4)..<(f.count - n), with: [0xFF, 0xFF, 0x0F, 0]) },
            { f in f.append(0) },
        ] {
            try FileManager.default.removeItem(atPath: seg.path)
            try FileManager.default.copyItem(atPath: copy, toPath: seg.path)
            try rewriteFooter(try SealedSegment(path: seg.path), edit)
            let e = #expect(throws: AuditError.self) { try SealedSegment(path: seg.path) }
            #expect(e?.code == .corrupt)
            #expect(e?.message.contains("footer") == true, "\(e?.message ?? "")")
        }
    }

    /// Blocks are compressed on several threads at once (`sealThreads`); the file, byte for
    /// byte, does not depend on how many.
    @Test func aSegmentSealedOnSeveralThreadsIsTheSameFile() throws {
        let input = entries(6000)
        var files: [[UInt8]] = []
        for threads in [1, 2, 4, 7] {
            let dir = temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let seg = try sealed(input, dictionarySize: 64 << 10, threads: threads, in: dir)
            #expect(seg.footer.blocks.count > 20)
            #expect(try seg.readAll().map(\.payload) == input.map(\.payload))
            files.append(Array(try Data(contentsOf: URL(fileURLWithPath: seg.path))))
        }
        #expect(files.allSatisfy { $0 == files[0] }, "sizes \(files.map(\.count))")
    }
}

/// A small deterministic generator (SplitMix64), so the entries are the same every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
