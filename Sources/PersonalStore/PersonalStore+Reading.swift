import AuditBase
import AuditEntries
import Foundation

// The personal store's reading: an entry's values opened under their subjects' keys.
extension PersonalStore {
    /// An opened value: what a commitment stands for.
    public struct Opened: Sendable, Equatable {
        /// The field's path.
        public var path: String
        /// The subject's tag.
        public var tag: SubjectTag
        /// The commitment's nonce.
        public var nonce: [UInt8]
        /// The clear value.
        public var value: String
    }

    /// The values of entry `seq` whose keys still exist.
    public func openings(seq: UInt64) throws -> [Opened] {
        let file: ValuesFile? = ioLock.withLock {
            var lo = 0
            var hi = files.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if files[mid].firstSeq <= seq { lo = mid + 1 } else { hi = mid }
            }
            return lo == 0 ? nil : files[lo - 1]
        }
        guard let file else { return [] }
        return try file.rows(seq: seq).flatMap(open)
    }

    /// A row's fields, decrypted; none when its key is gone (or it does not decrypt).
    private func open(_ r: ValueRow) -> [Opened] {
        guard let k = key(tag: r.tag), let plain = k.crypt(r.ciphertext, iv: r.iv[...]),
            let fields = ValueRow.fields(plain)
        else { return [] }
        return fields.map { Opened(path: $0.path, tag: r.tag, nonce: $0.nonce, value: $0.value) }
    }

    /// The rows of the `i`th values file in seq order: each one's seq, subject tag, and its
    /// fields opened (none when the key is gone); nil past the last file.
    /// Rows are decrypted on all cores (a verifier reads them all).
    public func rows(file i: Int) throws -> [(seq: UInt64, tag: SubjectTag, opened: [Opened])]? {
        guard let f = ioLock.withLock({ i < files.count ? files[i] : nil }) else { return nil }
        let rows = try f.allRows()
        let n = rows.count
        var opened = [[Opened]](repeating: [], count: n)
        let workers = min(max(1, n / 256), max(1, ProcessInfo.processInfo.activeProcessorCount))
        opened.withUnsafeMutableBufferPointer { ob in
            nonisolated(unsafe) let out = ob
            BlockingWorkers.fanOut(workers, name: "values-open") { w in
                for k in (w * n / workers)..<((w + 1) * n / workers) { out[k] = self.open(rows[k]) }
            }
        }
        return rows.indices.map { (rows[$0].seq, rows[$0].tag, opened[$0]) }
    }
}
