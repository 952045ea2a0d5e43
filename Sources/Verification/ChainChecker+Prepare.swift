import AuditBase
import AuditEntries
import Foundation
import PersonalStore
import SegmentStore
import Synchronization

/// The part of checking that needs nothing but each record (its content hash, its org, time
/// and index row), done for a batch at once on all cores, ahead of the serial checks.
extension ChainChecker {
    /// A batch of records with the per-entry work done that needs nothing but the record:
    /// payload, content hash, org, time and index row (`ChainChecker.prepare`).
    public struct PreparedBatch: @unchecked Sendable {
        var seqs: [UInt64]
        var hashes: [Hash]
        /// Each record's header (nil: unreadable), its content left where it is in `records`.
        var headers: [RecordPayload.Header?]
        var records: RecordRun
        var orgNames: [String?]
        var fields: [IndexFields?]
        var times: [Int64]
        /// Each entry's committed fields (§5.4.1), and the subject an erasure record names.
        var personal: [PersonalCheck.Prepared?]
    }

    /// The independent, expensive part of checking `batch`, on all cores (threads of its own, at
    /// the caller's priority); safe on any thread.
    /// With `personal`, each entry's committed fields are found too (`PersonalCheck.prepare`).
    /// `interners`, one per worker (at most that many work), keep the batches' repeated
    /// actions and actors as one String each.
    public static func prepare(
        _ batch: RecordRun, personal withPersonal: Bool = false, interners: [StringInterner] = []
    ) -> PreparedBatch {
        let n = batch.count
        var hashes = [Hash](repeating: .zero, count: n)
        var headers = [RecordPayload.Header?](repeating: nil, count: n)
        var orgNames = [String?](repeating: nil, count: n)
        var fields = [IndexFields?](repeating: nil, count: n)
        var times = [Int64](repeating: -1, count: n)
        var personal = [PersonalCheck.Prepared?](repeating: nil, count: n)
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let workers = min(n, interners.isEmpty ? cores : interners.count)
        hashes.withUnsafeMutableBufferPointer { hb in
            headers.withUnsafeMutableBufferPointer { pb in
                orgNames.withUnsafeMutableBufferPointer { ob in
                    fields.withUnsafeMutableBufferPointer { fb in
                        times.withUnsafeMutableBufferPointer { tb in
                            personal.withUnsafeMutableBufferPointer { cb in
                                nonisolated(unsafe) let (h, p, o, f, t, c) = (hb, pb, ob, fb, tb, cb)
                                // Chunks taken in turn, not a fixed share each: a worker the
                                // other stages preempt leaves its chunks to the others.
                                let next = Atomic<Int>(0)
                                let chunk = 256
                                BlockingWorkers.fanOut(workers, name: "verify-prep") { w in
                                    let interner = interners.isEmpty ? nil : interners[w]
                                    while true {
                                        let from = next.wrappingAdd(chunk, ordering: .relaxed).oldValue
                                        guard from < n else { break }
                                        // The content is read where it is, in its expanded
                                        // block: a copy of it per entry (an allocation, a free
                                        // and a memmove) was not needed.
                                        batch.forEachPayload(in: from..<min(n, from + chunk)) { i, whole in
                                            guard let hd = try? RecordPayload.Header(buffer: whole) else { return }
                                            let content = UnsafeBufferPointer(rebasing: whole[hd.contentStart...])
                                            h[i] = SHA256.hash(UnsafeRawPointer(content.baseAddress), content.count)
                                            // One pass gives the org, the time, the index row
                                            // and whether a commitment may be there.
                                            var commitments: Bool
                                            if let (org, fields, mayHold) = Entry.storedFields(
                                                ofStored: content, interner: interner)
                                            {
                                                o[i] = org
                                                t[i] = fields.time
                                                f[i] = fields
                                                commitments = mayHold
                                            } else {
                                                o[i] = CanonicalScan.topLevelString(content, key: "org")
                                                commitments = Personal.mayHoldCommitments(content)
                                            }
                                            let action = f[i]?.action
                                            if withPersonal, action == Personal.erasureAction || commitments {
                                                c[i] = PersonalCheck.prepare(Array(content), action: action)
                                            }
                                            p[i] = hd
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return PreparedBatch(
            seqs: batch.seqs, hashes: hashes, headers: headers, records: batch, orgNames: orgNames,
            fields: fields,
            times: times,
            personal: personal)
    }
}
