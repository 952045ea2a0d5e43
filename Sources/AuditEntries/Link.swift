import AuditBase
import LogProofs

#if canImport(Glibc)
import Glibc
#endif

/// The fixed-size bytes that make an entry's Merkle leaf (format-spec.md §5.3):
///
///     link := 0x01 seq:u64be orgSeq:u64be contentHash[32] prevHash[32] prevOrgHash[32]
///
/// The leaf hash `SHA-256(0x00 || link)` is the entry's hash: it is the global chain's link
/// (the next entry's `prevHash`), the org chain's link (the next same-org entry's
/// `prevOrgHash`) and the RFC 9162 leaf. Building it is the commit path's only serial hashing
/// per entry (a verifier builds it on all cores from the stored leaves, then checks in order
/// that those are the leaves its own chains reached).
public struct Link: Sendable, Equatable {
    /// Sequence number (= Merkle leaf index).
    public var seq: UInt64
    /// Position among the org's entries, from 0.
    public var orgSeq: UInt64
    /// SHA-256 of the canonical entry bytes.
    public var contentHash: Hash
    /// Leaf hash of entry `seq - 1` (zero for the first entry).
    public var prevHash: Hash
    /// Leaf hash of the org's previous entry (zero for its first).
    public var prevOrgHash: Hash

    /// A link.
    public init(seq: UInt64, orgSeq: UInt64, contentHash: Hash, prevHash: Hash, prevOrgHash: Hash) {
        self.seq = seq
        self.orgSeq = orgSeq
        self.contentHash = contentHash
        self.prevHash = prevHash
        self.prevOrgHash = prevOrgHash
    }

    /// The 113 bytes.
    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: ChainFormat.linkSize)
        w.write(ChainFormat.linkVersion)
        w.writeBE(seq)
        w.writeBE(orgSeq)
        w.write(contentHash.bytes)
        w.write(prevHash.bytes)
        w.write(prevOrgHash.bytes)
        return w.bytes
    }

    /// Parses 113 link bytes.
    public init(bytes: [UInt8]) throws(EntryError) {
        guard bytes.count == ChainFormat.linkSize, bytes[0] == ChainFormat.linkVersion else {
            throw EntryError(
                "link", "must be \(ChainFormat.linkSize) bytes starting with version \(ChainFormat.linkVersion)")
        }
        var r = ByteReader(bytes, range: 1..<bytes.count)
        do {
            seq = try r.readU64BE()
            orgSeq = try r.readU64BE()
            contentHash = Hash(bytes: try r.read(count: 32)) ?? .zero
            prevHash = Hash(bytes: try r.read(count: 32)) ?? .zero
            prevOrgHash = Hash(bytes: try r.read(count: 32)) ?? .zero
        } catch { throw EntryError("link", "is cut short") }
    }

    /// `SHA-256(0x00 || link)`, built in place without allocating.
    public var leafHash: Hash {
        withUnsafeTemporaryAllocation(byteCount: 1 + ChainFormat.linkSize, alignment: 8) { b in
            b[0] = ChainFormat.leafPrefix
            b[1] = ChainFormat.linkVersion
            var s = seq.bigEndian
            var o = orgSeq.bigEndian
            withUnsafeBytes(of: &s) { (b.baseAddress! + 2).copyMemory(from: $0.baseAddress!, byteCount: 8) }
            withUnsafeBytes(of: &o) { (b.baseAddress! + 10).copyMemory(from: $0.baseAddress!, byteCount: 8) }
            contentHash.withBytes { (b.baseAddress! + 18).copyMemory(from: $0.baseAddress!, byteCount: 32) }
            prevHash.withBytes { (b.baseAddress! + 50).copyMemory(from: $0.baseAddress!, byteCount: 32) }
            prevOrgHash.withBytes { (b.baseAddress! + 82).copyMemory(from: $0.baseAddress!, byteCount: 32) }
            return SHA256.hash(b.baseAddress, 1 + ChainFormat.linkSize)
        }
    }
}

/// What the segment store holds for each entry (format-spec.md §5.2):
///
///     payload := orgSeq:varint prevOrgDelta:varint content
///
/// `prevOrgDelta` is `seq - seq of the org's previous entry`, or 0 for the org's first entry.
/// The chain hashes are not repeated here: they are the leaf hashes stored in the tree.
public struct RecordPayload: Sendable, Equatable {
    /// Position among the org's entries.
    public var orgSeq: UInt64
    /// Distance back to the org's previous entry (0: none).
    public var prevOrgDelta: UInt64
    /// Canonical entry bytes.
    public var content: [UInt8]

    /// The stored bytes.
    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: storedCount)
        write(into: &w)
        return w.bytes
    }

    /// How many stored bytes.
    public var storedCount: Int {
        ByteWriter.varintCount(orgSeq) + ByteWriter.varintCount(prevOrgDelta) + content.count
    }

    /// Appends the stored bytes (`storedCount` of them) to `w`: the group commit writes them
    /// straight into its block.
    public func write(into w: inout ByteWriter) {
        w.writeVarint(orgSeq)
        w.writeVarint(prevOrgDelta)
        w.write(content)
    }

    /// Parses stored bytes.
    public init(bytes: [UInt8]) throws(EntryError) {
        let h = try Header(bytes: bytes)
        orgSeq = h.orgSeq
        prevOrgDelta = h.prevOrgDelta
        content = Array(bytes[h.contentStart...])
    }

    /// Stored bytes' header, and where their canonical bytes start: what a reader of every
    /// entry (the verifier) takes without copying the content out.
    public struct Header: Sendable {
        public var orgSeq: UInt64
        public var prevOrgDelta: UInt64
        public var contentStart: Int

        /// Parses the header of stored bytes.
        public init(bytes: [UInt8]) throws(EntryError) {
            self = try bytes.withUnsafeBufferPointer { (b) throws(EntryError) in try Header(buffer: b) }
        }

        /// Parses the header of stored bytes lying in `buffer` (no copy).
        public init(buffer: UnsafeBufferPointer<UInt8>) throws(EntryError) {
            var at = 0
            guard let o = ByteReader.varint(buffer, at: &at, end: buffer.count),
                let d = ByteReader.varint(buffer, at: &at, end: buffer.count)
            else { throw EntryError("record", "payload header is malformed") }
            orgSeq = o
            prevOrgDelta = d
            contentStart = at
        }
    }

    /// A payload.
    public init(orgSeq: UInt64, prevOrgDelta: UInt64, content: [UInt8]) {
        self.orgSeq = orgSeq
        self.prevOrgDelta = prevOrgDelta
        self.content = content
    }

    /// The segment store's grouping key for `org`: FNV-1a 64 (never 0). Only clusters records;
    /// a collision costs locality, never correctness.
    public static func groupKey(_ org: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in org.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h == 0 ? 1 : h
    }
}

/// Extracts top-level string members from canonical entry bytes in one pass, without building
/// a tree (the verifier's fast path).
public enum CanonicalScan {
    /// The value of top-level string member `key`, if present and free of escapes.
    public static func topLevelString(_ c: [UInt8], key: String) -> String? {
        c.withUnsafeBufferPointer { topLevelString($0, key: key) }
    }

    /// `topLevelString(_:key:)` over bytes in place. Strings are skipped by `memchr` to their
    /// closing quote (an entry is mostly strings, and "org" is one of its last members: a byte
    /// loop over it was 60 % of checking a read entry against its leaf).
    public static func topLevelString(_ c: UnsafeBufferPointer<UInt8>, key: String) -> String? {
        var key = key
        return key.withUTF8 { k in
            guard let p = c.baseAddress, let kp = k.baseAddress else { return nil }
            let n = c.count
            var depth = 0
            var i = 0
            while i < n {
                let ch = p[i]
                if ch != 0x22 {
                    if ch == 0x7B || ch == 0x5B {
                        depth += 1
                    } else if ch == 0x7D || ch == 0x5D {
                        depth -= 1
                    }
                    i += 1
                    continue
                }
                // A member's name at the top level: `"key":"` after `{` or `,`.
                if depth == 1, i > 0, p[i - 1] == 0x7B || p[i - 1] == 0x2C, n - i >= k.count + 4,
                    p[i + 1 + k.count] == 0x22, p[i + 2 + k.count] == 0x3A, p[i + 3 + k.count] == 0x22,
                    memcmp(p + i + 1, kp, k.count) == 0
                {
                    let start = i + 4 + k.count
                    var j = start
                    while j < n, p[j] != 0x22 {
                        if p[j] == 0x5C { return nil }
                        j += 1
                    }
                    return String(decoding: UnsafeBufferPointer(start: p + start, count: j - start), as: UTF8.self)
                }
                // Past the string: its closing quote is the first one after an even run of
                // backslashes (`\\"` ends it, `\"` does not).
                let open = i + 1
                i = open
                while true {
                    guard i < n, let q = memchr(p + i, 0x22, n - i) else { return nil }
                    let at = p.distance(to: q.assumingMemoryBound(to: UInt8.self))
                    var b = at
                    while b > open, p[b - 1] == 0x5C { b -= 1 }
                    i = at + 1
                    if (at - b) % 2 == 0 { break }
                }
            }
            return nil
        }
    }
}
