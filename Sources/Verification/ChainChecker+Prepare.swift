import AuditBase
import AuditEntries
import AuditIndex
import Foundation
import LogTree
import PersonalStore
import SegmentStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The part of checking that needs nothing but each record and the stored tree (its content
/// hash, its leaf, its org, time and index row), done for a batch at once on all cores, ahead
/// of the serial checks.
extension ChainChecker {
    /// One entry of a prepared batch.
    struct PreparedEntry {
        /// SHA-256 of the content.
        var hash = Hash.zero
        /// The record's header (nil: unreadable), its content left where it is in the records.
        var header: RecordPayload.Header?
        var org: String?
        /// `received_at`; -1 when the entry lacks a field the index needs (or one is malformed).
        var time: Int64 = -1
        /// The leaf hash built from the stored leaves its link names (the one before it and its
        /// org's previous, when that one is in the batch's window): nil when not built. The
        /// serial check takes it only after checking that those stored leaves are the ones its
        /// own chains reached (`PreparedBatch.builtLeaf`).
        var leaf: Hash?
        /// The entry compared with its index row, when the batch's segment has an index file.
        var index = SealedIndexRows.RowCheck.unchecked
        /// Whether its action starts with one of the prefixes collected.
        var wanted = false
        /// Its committed fields (§5.4.1), and the subject an erasure record names.
        var personal: PersonalCheck.Prepared?
    }

    /// A batch of records with the per-entry work done that needs nothing but the record and
    /// the stored tree (`ChainChecker.prepare`).
    public struct PreparedBatch: @unchecked Sendable {
        var seqs: [UInt64]
        var entries: [PreparedEntry]
        var records: RecordRun
        /// The stored tree's leaves from the one before the batch's first entry (none before
        /// entry 0) through the last the tree held when the batch was prepared.
        var window: [Hash] = []
        /// How many of the batch's entries have a stored leaf in `window`.
        var have = 0
        /// Whether each entry was compared with its segment's index file.
        var indexed = false

        /// The stored leaf of the batch's entry `i` (which must be below `have`).
        func storedLeaf(_ i: Int) -> Hash { window[i + (seqs[0] > 0 ? 1 : 0)] }

        /// Entry `i`'s leaf as built in `prepare`, if it was built from exactly `prev` (the leaf
        /// before it) and `prevOrg` (its org's previous leaf, zero for its first): with the same
        /// header and content hash, the same link bytes, so the same hash.
        func builtLeaf(_ i: Int, prev: Hash, prevOrg: Hash, prevOrgDelta: UInt64) -> Hash? {
            guard let leaf = entries[i].leaf else { return nil }
            let seq = seqs[i]
            let start = seqs[0] > 0 ? seqs[0] - 1 : 0
            let usedPrev = seq > 0 ? window[Int(seq - 1 - start)] : .zero
            let usedOrg = prevOrgDelta == 0 ? .zero : window[Int(seq - prevOrgDelta - start)]
            return usedPrev == prev && usedOrg == prevOrg ? leaf : nil
        }
    }

    /// The independent, expensive part of checking `batch`, on all cores (threads of its own, at
    /// the caller's priority); safe on any thread.
    ///
    /// Each entry the tree holds gets its leaf hash built here too, from the stored leaves its
    /// link names: the serial check then hashes nothing for it. With `index` (the batch's
    /// segment's index file), each entry is compared with its row, on its bytes in place.
    /// With `personal`, each entry's committed fields are found too (`PersonalCheck.prepare`).
    /// `interners`, one per worker (at most that many work), keep the batches' repeated long
    /// org names as one String each.
    public static func prepare(
        _ batch: RecordRun, personal withPersonal: Bool = false, interners: [StringInterner] = [],
        tree: TreeStore, index: SealedIndexRows? = nil, collect: [[UInt8]] = []
    ) throws -> PreparedBatch {
        let n = batch.count
        // The stored leaves the batch's links name, read once: a run of contiguous entries.
        let first = batch.seqs.first ?? 0
        let windowStart = first > 0 ? first - 1 : 0
        let size = tree.size
        let contiguous = n > 0 && batch.seqs[n - 1] == first + UInt64(n - 1)
        let have = contiguous && size > first ? Int(min(UInt64(n), size - first)) : 0
        let window = have > 0 ? try tree.leaves(from: windowStart, count: Int(first + UInt64(have) - windowStart)) : []
        var entries = [PreparedEntry](repeating: PreparedEntry(), count: n)
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let workers = min(n, interners.isEmpty ? cores : interners.count)
        func work(_ lookup: SealedIndexRows.Lookup?) {
            entries.withUnsafeMutableBufferPointer { eb in
                nonisolated(unsafe) let out = eb
                // Chunks taken in turn, not a fixed share each: a worker the other stages
                // preempt leaves its chunks to the others.
                let next = Atomic<Int>(0)
                let chunk = 256
                BlockingWorkers.fanOut(workers, name: "verify-prep") { w in
                    let interner = interners.isEmpty ? nil : interners[w]
                    while true {
                        let from = next.wrappingAdd(chunk, ordering: .relaxed).oldValue
                        guard from < n else { break }
                        // The content is read where it is, in its expanded block: a copy of it
                        // per entry (an allocation, a free and a memmove) was not needed.
                        batch.forEachPayload(in: from..<min(n, from + chunk)) { i, whole in
                            guard let hd = try? RecordPayload.Header(buffer: whole) else { return }
                            let content = UnsafeBufferPointer(rebasing: whole[hd.contentStart...])
                            var e = PreparedEntry(header: hd)
                            e.hash = SHA256.hash(UnsafeRawPointer(content.baseAddress), content.count)
                            prepareFields(
                                &e, batch.seqs[i], content, lookup: lookup, interner: interner, collect: collect,
                                personal: withPersonal)
                            if i < have {
                                e.leaf = leaf(
                                    seq: first + UInt64(i), hd, content: e.hash, window: window,
                                    windowStart: windowStart)
                            }
                            out[i] = e
                        }
                    }
                }
            }
        }
        if let index, contiguous {
            index.withLookup { work($0) }
        } else {
            work(nil)
        }
        return PreparedBatch(
            seqs: batch.seqs, entries: entries, records: batch, window: window, have: have,
            indexed: index != nil && contiguous)
    }

    /// The entry's org, time, index row, collection and personal parts from its content: in
    /// one pass where the scanner can, its strings compared where they lie (no String made but
    /// the org's); by the parser otherwise.
    static func prepareFields(
        _ e: inout PreparedEntry, _ seq: UInt64, _ content: UnsafeBufferPointer<UInt8>,
        lookup: SealedIndexRows.Lookup?, interner: StringInterner?, collect: [[UInt8]], personal: Bool
    ) {
        guard let orgSeq = e.header?.orgSeq else { return }
        var commitments: Bool
        var erasure = false
        if let sp = Entry.storedSpans(ofStored: content) {
            func bytes(_ r: Range<Int>) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: content[r]) }
            let org = bytes(sp.org)
            e.org = org.count > 15 && interner != nil ? interner?.string(org) : String(decoding: org, as: UTF8.self)
            e.time = sp.time
            commitments = sp.mayHoldCommitments
            let action = bytes(sp.action)
            if let lookup {
                e.index = sp.actorSeparator.withUTF8Buffer { sep in
                    lookup.check(
                        seq: seq, org: org, orgSeq: orgSeq, time: sp.time, category: sp.category, outcome: sp.outcome,
                        action: action, actor: bytes(sp.actorType), sep, bytes(sp.actorId))
                }
            }
            e.wanted = startsWithAny(action, collect)
            erasure = Personal.erasureActionBytes.withUnsafeBufferPointer { equal(action, $0) }
        } else if let (org, fields, mayHold) = Entry.storedFields(ofStored: content) {
            e.org = org
            e.time = fields.time
            commitments = mayHold
            e.index = lookup?.check(seq: seq, org: org, orgSeq: orgSeq, fields: fields) ?? .unchecked
            var action = fields.action
            e.wanted = action.withUTF8 { startsWithAny($0, collect) }
            erasure = action == Personal.erasureAction
        } else {
            e.org = CanonicalScan.topLevelString(content, key: "org")
            commitments = Personal.mayHoldCommitments(content)
        }
        if personal, erasure || commitments {
            e.personal = PersonalCheck.prepare(Array(content), action: erasure ? Personal.erasureAction : nil)
        }
    }

    /// The leaf hash of entry `seq` (header `hd`, content hash `content`) from the stored leaves
    /// in `window`, or nil when the org's previous entry lies before it.
    static func leaf(
        seq: UInt64, _ hd: RecordPayload.Header, content: Hash, window: [Hash], windowStart: UInt64
    )
        -> Hash?
    {
        let prev = seq > 0 ? window[Int(seq - 1 - windowStart)] : .zero
        let prevOrg: Hash
        if hd.prevOrgDelta == 0 {
            prevOrg = .zero
        } else {
            guard hd.prevOrgDelta <= seq, seq - hd.prevOrgDelta >= windowStart else { return nil }
            prevOrg = window[Int(seq - hd.prevOrgDelta - windowStart)]
        }
        return Link(seq: seq, orgSeq: hd.orgSeq, contentHash: content, prevHash: prev, prevOrgHash: prevOrg).leafHash
    }

    /// Whether `s` starts with one of `prefixes` (bytes compared in place: a generic
    /// `starts(with:)` per prefix was 2 % of a verification).
    static func startsWithAny(_ s: UnsafeBufferPointer<UInt8>, _ prefixes: [[UInt8]]) -> Bool {
        prefixes.contains { p in
            p.count <= s.count && p.withUnsafeBufferPointer { equal(UnsafeBufferPointer(rebasing: s[..<p.count]), $0) }
        }
    }

    static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        guard a.count > 0, let x = a.baseAddress, let y = b.baseAddress else { return true }
        return memcmp(x, y, a.count) == 0
    }
}
