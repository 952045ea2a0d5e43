import AuditBase
import AuditEntries
import AuditIndex
import LogProofs
import SegmentStore

/// The first half of the durable write (format-spec.md §3, §5), in the group commit: each
/// entry of a group gets, in order, 1. its `received_at`, never earlier than the entry before
/// it; 2. its sequence number; 3. its org's position (`org_seq`, the delta to the org's
/// previous entry); 4. its 113-byte link and leaf hash, chaining it globally and within its
/// org; 5. the record the segment store writes (into the group's block) and the row the org
/// index keeps. Nothing here changes until `adopt`, which the ledger calls only after the
/// fdatasync covering the group: a group that fails to become durable leaves the positions
/// as they were.
struct Sequencer {
    /// Every org's position after the last durable entry.
    private(set) var orgs: [String: OrgPosition]
    /// The last durable entry's leaf hash (`Hash.zero` before the first).
    private(set) var lastLeaf: Hash
    /// The last durable entry's `received_at`.
    private(set) var lastReceivedAt: Int64

    /// One group being sequenced.
    struct Group {
        /// The group's records, written into its block as they are sequenced.
        fileprivate(set) var records: BlockRecords
        fileprivate(set) var leaves: [Hash] = []
        fileprivate(set) var hits: [(String, IndexHit)] = []
        fileprivate var overlay: [String: OrgPosition] = [:]
        fileprivate var next: UInt64
        fileprivate var prev: Hash
        fileprivate var time: Int64
        /// The seq the next entry sequenced in this group gets.
        var nextSeq: UInt64 { next }

        /// The group's index rows, handed over: the group keeps none, so the index takes them
        /// without copying one.
        mutating func takeHits() -> [(String, IndexHit)] {
            var out: [(String, IndexHit)] = []
            swap(&out, &hits)
            return out
        }
    }

    init(orgs: [String: OrgPosition], lastLeaf: Hash, lastReceivedAt: Int64) {
        self.orgs = orgs
        self.lastLeaf = lastLeaf
        self.lastReceivedAt = lastReceivedAt
    }

    /// A group whose first entry will be entry `seq`, with room for `bytes` of records.
    func group(at seq: UInt64, bytes: Int = 0) -> Group {
        Group(records: BlockRecords(firstSeq: seq, capacity: bytes), next: seq, prev: lastLeaf, time: lastReceivedAt)
    }

    /// Sequences `entry` as the next entry of `g` (steps 1-5), and returns its receipt.
    func sequence(_ entry: PreparedEntry, in g: inout Group) -> Receipt {
        // An entry in order is passed on as it is, not copied (a retain of everything it holds).
        if let later = entry.reordered(after: g.time) { return place(later, in: &g) }
        return place(entry, in: &g)
    }

    /// Steps 2-5 for an entry whose `received_at` is in order.
    private func place(_ e: PreparedEntry, in g: inout Group) -> Receipt {
        g.time = max(g.time, e.fields.time)
        let seq = g.next
        // Found once: an org met earlier in the group is updated in its slot, not hashed again.
        let slot = g.overlay.index(forKey: e.org)
        let position = slot.map { g.overlay.values[$0] } ?? orgs[e.org] ?? .start
        let (orgSeq, prevOrgDelta) = position.header(at: seq)
        let leaf = position.link(seq: seq, prev: g.prev, contentHash: e.contentHash).leafHash
        // Its record's bytes go straight into the group's block: no array of their own.
        let record = RecordPayload(orgSeq: orgSeq, prevOrgDelta: prevOrgDelta, content: e.content)
        g.records.append(seq: seq, key: RecordPayload.groupKey(e.org), payloadCount: record.storedCount) {
            record.write(into: &$0)
        }
        g.leaves.append(leaf)
        g.hits.append((e.org, IndexHit(seq: seq, orgSeq: orgSeq, fields: e.fields)))
        let advanced = position.advanced(seq: seq, leaf: leaf)
        if let slot { g.overlay.values[slot] = advanced } else { g.overlay[e.org] = advanced }
        g.prev = leaf
        g.next = seq + 1
        return Receipt(seq: seq, hash: leaf, orgSeq: orgSeq)
    }

    /// Sequences a record of another log (a follower's) as the next entry of `g`: the same
    /// steps, except that everything is read from the record and checked instead of made: its
    /// sequence number is the next one, its entry is a valid stored entry, its group key is
    /// its org's, and its org position and link continue the chains (the chain rule).
    func verbatim(_ r: StoredRecord, in g: inout Group) throws -> Receipt {
        func refuse(_ why: String) -> AuditError { AuditError(.corrupt, "entry \(r.seq) \(why)") }
        guard r.seq == g.next else { throw refuse("arrived where entry \(g.next) belongs") }
        let p: RecordPayload
        do { p = try RecordPayload(bytes: r.payload) } catch { throw refuse("is not a record: \(error)") }
        guard let (org, fields) = Entry.indexFields(ofStored: p.content) else {
            throw refuse("is not a valid stored entry")
        }
        guard r.key == RecordPayload.groupKey(org) else { throw refuse("carries another org's group key") }
        let position = g.overlay[org] ?? orgs[org] ?? .start
        let leaf: Hash
        do {
            leaf = try position.expect(
                seq: r.seq, orgSeq: p.orgSeq, prevOrgDelta: p.prevOrgDelta, prev: g.prev,
                contentHash: SHA256.hash(p.content)
            ).leafHash
        } catch { throw refuse("breaks org \(org)'s chain: \(error)") }
        g.time = max(g.time, fields.time)
        g.records.append(seq: r.seq, key: r.key, payload: r.payload)
        g.leaves.append(leaf)
        g.hits.append((org, IndexHit(seq: r.seq, orgSeq: p.orgSeq, fields: fields)))
        g.overlay[org] = position.advanced(seq: r.seq, leaf: leaf)
        g.prev = leaf
        g.next = r.seq + 1
        return Receipt(seq: r.seq, hash: leaf, orgSeq: p.orgSeq)
    }

    /// The group is durable: its positions become the log's.
    mutating func adopt(_ g: Group) {
        for (k, v) in g.overlay { orgs[k] = v }
        lastLeaf = g.prev
        lastReceivedAt = g.time
    }
}
