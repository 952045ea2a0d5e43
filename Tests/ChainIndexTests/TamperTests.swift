import AuditBase
import Foundation
import LogProofs
import Testing

@testable import AuditEntries
@testable import ChainIndex
@testable import LogTree
@testable import SegmentStore
@testable import Verification

/// Tampering on disk, by someone who can write the files but does not hold the signing key.
/// Each is named after the attack; each must be detected and located.
@Suite struct TamperTests {
    /// A closed log of 3 sealed segments (entries 0..<360) and an empty open segment.
    func makeLog() throws -> (String, NoteSigner) {
        let dir = temporaryDirectory("tamper")
        let s = try Sample.signer()
        let l = try Ledger(directory: dir, signer: s, options: Sample.options())
        for seg in 0..<3 {
            for b in 0..<4 {
                _ = try l.appendAndWait(
                    (0..<30).map { try Sample.prepared(org: "org_\($0 % 3)", i: seg * 120 + b * 30 + $0) })
                try l.checkpointNow()
            }
            try l.sealNow()
        }
        try l.close()
        #expect(try Verifier(directory: dir, key: LogKeys(s.verifier)).run().ok)
        return (dir, s)
    }

    func segPath(_ dir: String, _ n: UInt64) -> String { DataDirectory(dir).segments + "/" + SegmentNames.sealed(n) }

    /// Rewrites sealed segment `n` as a well-formed file (valid checksums) after `edit`.
    func forge(_ dir: String, _ n: UInt64, _ edit: (inout [StoredRecord]) throws -> Void) throws {
        let path = segPath(dir, n)
        var recs = try SealedSegment(path: path).readAll()
        let first = recs[0].seq
        try edit(&recs)
        for i in recs.indices { recs[i].seq = first + UInt64(i) }
        _ = chmod(path, 0o644)
        try FileManager.default.removeItem(atPath: path)
        _ = try Sealer.seal(
            records: recs, segment: n, firstSeq: first, directory: DataDirectory(dir).segments, blockTarget: 4096,
            level: 3, dictionarySize: 0)
    }

    func verify(_ dir: String, _ s: NoteSigner) throws -> VerificationFailure? {
        try Verifier(directory: dir, key: LogKeys(s.verifier)).run().failure
    }

    func editContent(_ r: inout StoredRecord, _ from: String, _ to: String) throws {
        var p = try RecordPayload(bytes: r.payload)
        p.content = Array(String(decoding: p.content, as: UTF8.self).replacingOccurrences(of: from, with: to).utf8)
        r.payload = p.bytes
    }

    @Test func flippedByteInSealedBlock() throws {
        let (dir, s) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let seg = try SealedSegment(path: segPath(dir, 1))
        let b = seg.footer.blocks[2]
        try flip(segPath(dir, 1), at: Int(b.offset) + 60)
        let f = try #require(try verify(dir, s))
        #expect(f.path == segPath(dir, 1))
        #expect(f.offset == b.offset)
        #expect(f.message.contains("checksum"))
    }

    @Test func editedEntryWithValidChecksums() throws {
        let (dir, s) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try forge(dir, 1) { try editContent(&$0[7], "\"outcome\":\"success\"", "\"outcome\":\"denied\"") }
        let f = try #require(try verify(dir, s))
        #expect(f.seq == 127)
        #expect(f.path == segPath(dir, 1))
        #expect(f.message.contains("altered"))
    }

    @Test func deletedEntry() throws {
        let (dir, s) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try forge(dir, 2) { $0.remove(at: 10) }
        try rewriteOpenHeader(dir, segment: 3, firstSeq: 359)
        let f = try #require(try verify(dir, s))
        #expect(f.seq == 250)
        #expect(f.path == segPath(dir, 2))
    }

    @Test func swappedEntries() throws {
        let (dir, s) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try forge(dir, 0) { $0.swapAt(40, 41) }
        let f = try #require(try verify(dir, s))
        #expect(f.seq == 40)
        #expect(f.path == segPath(dir, 0))
    }

    @Test func truncatedSegment() throws {
        let (dir, s) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = segPath(dir, 1)
        _ = chmod(p, 0o644)
        let h = try FileHandle(forUpdating: URL(fileURLWithPath: p))
        try h.truncate(atOffset: 500)
        try h.close()
        let f = try #require(try verify(dir, s))
        #expect(f.path == p)
    }

    @Test func forgeryWithRecomputedChainAndTreeFailsTheSignedCheckpoint() throws {
        let (dir, s) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The insider edits entry 200 and recomputes every hash after it, tree files included.
        try forge(dir, 1) { try editContent(&$0[80], "\"outcome\":\"success\"", "\"outcome\":\"failure\"") }
        try recomputeTree(dir)
        let f = try #require(try verify(dir, s))
        #expect(f.path.hasSuffix("checkpoints/checkpoints.log"))
        #expect(f.message.contains("does not match the signed checkpoint"))
        #expect(try #require(f.seq) <= 200)
        #expect(f.message.contains("..<210"))
        // And the daemon refuses to start on it.
        #expect(throws: AuditError.self) { try Ledger(directory: dir, signer: s, options: Sample.options()) }
    }

    @Test func editedCheckpoint() throws {
        let (dir, s) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Rewrite the 3rd checkpoint's root, fixing the record checksum as an insider would.
        let path = DataDirectory(dir).checkpoints + "/" + CheckpointLog.logName
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var off = 0
        for _ in 0..<2 { off += 16 + Int(UInt32(bytes[off]) | UInt32(bytes[off + 1]) << 8) }
        let len = Int(UInt32(bytes[off]) | UInt32(bytes[off + 1]) << 8)
        var note = String(decoding: bytes[(off + 16)..<(off + 16 + len)], as: UTF8.self)
        let lines = note.split(separator: "\n", omittingEmptySubsequences: false)
        note = note.replacingOccurrences(of: String(lines[2]), with: Data(Merkle.emptyRoot.bytes).base64EncodedString())
        let nb = Array(note.utf8)
        #expect(nb.count == len)
        var w = ByteWriter()
        w.write(Array(bytes[(off + 8)..<(off + 16)]))
        let crc = CRC32C.checksum(nb, crc: CRC32C.checksum(w.bytes))
        bytes.replaceSubrange((off + 16)..<(off + 16 + len), with: nb)
        bytes.replaceSubrange(
            (off + 4)..<(off + 8),
            with: [UInt8(crc & 0xff), UInt8(crc >> 8 & 0xff), UInt8(crc >> 16 & 0xff), UInt8(crc >> 24)])
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let f = try #require(try verify(dir, s))
        #expect(f.path == path)
        #expect(f.offset == Int64(off))
        #expect(f.message.contains("does not verify"))
    }

    @Test func swappedVerifierKeyIsCaughtWhenTheAuditorPinsTheKey() throws {
        let (dir, s) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let other = try Sample.signer()
        #expect(try Verifier(directory: dir, key: LogKeys(other.verifier)).run().failure != nil)
        _ = s
    }

    /// A leaf hash edited in the tree file: a page read refuses the entry it belongs to, and the
    /// next one (whose link names it), however the page's leaves are read; other pages are served.
    @Test func anEditedLeafFailsThePagesThatReadIt() throws {
        let (dir, s) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try flip(DataDirectory(dir).tree + "/level-00.hashes", at: 200 * 32 + 5)
        let l = try Ledger(directory: dir, signer: s, options: Sample.options())
        defer { try? l.close() }
        for seqs in [[UInt64(200)], [201], Array(190..<210), [150, 200, 250]] {
            #expect(throws: AuditError.self, "\(seqs)") { _ = try l.entries(seqs: seqs) }
        }
        #expect(try l.entries(seqs: Array(100..<150)).count == 50)
        // A newest-first page of entry 200's org (org_2), through the index, reaches it and fails.
        #expect(try l.entries(seqs: [199])[0].org == "org_1")
        #expect(throws: AuditError.self) { _ = try l.search(org: "org_2", limit: 100, cursor: 260) }
        #expect(try l.search(org: "org_2", limit: 10, cursor: 150).entries.count == 10)
    }

    // MARK: helpers

    func flip(_ path: String, at offset: Int) throws { try flipByte(path, at: offset, mask: 0x01) }

    func rewriteOpenHeader(_ dir: String, segment: UInt64, firstSeq: UInt64) throws {
        let p = DataDirectory(dir).segments + "/" + SegmentNames.open(segment)
        try Data(SegmentHeader(flags: SegmentFormat.flagOpen, segment: segment, firstSeq: firstSeq).encoded()).write(
            to: URL(fileURLWithPath: p))
    }

    /// Recomputes every leaf from the (forged) segments and rewrites the tree files.
    func recomputeTree(_ dir: String) throws {
        let store = try Ledger.segmentStore(dir, retired: HotTierOnly(), readOnly: true)
        var orgs: [String: (UInt64, Hash)] = [:]
        var prev = Hash.zero
        var leaves: [Hash] = []
        try store.scan { r in
            let p = try RecordPayload(bytes: r.payload)
            let org = CanonicalScan.topLevelString(p.content, key: "org") ?? ""
            let leaf = Link(
                seq: r.seq, orgSeq: p.orgSeq, contentHash: SHA256.hash(p.content), prevHash: prev,
                prevOrgHash: orgs[org]?.1 ?? .zero
            ).leafHash
            orgs[org] = (r.seq, leaf)
            prev = leaf
            leaves.append(leaf)
            return true
        }
        for f in try FileManager.default.contentsOfDirectory(atPath: DataDirectory(dir).tree) {
            try FileManager.default.removeItem(atPath: dir + "/tree/" + f)
        }
        let t = try TreeStore(directory: DataDirectory(dir).tree)
        try t.append(leaves)
        try t.sync()
    }
}
