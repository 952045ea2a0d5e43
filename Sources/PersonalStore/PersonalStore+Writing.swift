import AuditBase
import AuditEntries
import Foundation

// The personal store's writing: a group's rows and new keys appended by the ledger's commit
// thread, made durable before the segment, dropped with a purge, cut after a failed group.
extension PersonalStore {
    /// Appends the rows of a group's entries (and the keys first made for them); `sync` makes
    /// them durable. A row whose key was destroyed since its entry was prepared (an erasure
    /// raced it) is not written: the erasure record covers its tag.
    public func write(_ entries: [(seq: UInt64, rows: [SealedRow])]) throws {
        guard !readOnly else { throw AuditError(.invalidArgument, "\(directory) is open read-only") }
        guard entries.contains(where: { !$0.rows.isEmpty }) else { return }
        try ioLock.withLock {
            // An erasure holds `ioLock` from its check to the key's destruction: no key can be
            // destroyed between this snapshot and the writes below.
            let newKeys: [SubjectKey] = lock.withLock {
                defer { pending.removeAll() }
                return pending
            }
            var rows = ByteWriter(capacity: entries.count * 256)
            var starts: [(seq: UInt64, offset: Int)] = []
            starts.reserveCapacity(entries.count * 2)
            // By index, the rows where they lie: a copy of a row would retain its key, which
            // the event loops retain too (a popular subject's key is in many entries).
            for e in entries.indices {
                let seq = entries[e].seq
                for r in entries[e].rows.indices where !entries[e].rows[r].key.destroyed.load(ordering: .acquiring) {
                    starts.append((seq, rows.bytes.count))
                    ValueRow.frame(seq: seq, sealed: entries[e].rows[r].body, into: &rows)
                }
            }
            if !newKeys.isEmpty {
                var w = ByteWriter()
                for k in newKeys where !k.destroyed.load(ordering: .acquiring) {
                    Journal.frame(
                        KeyRecord.encode(SubjectKeyParts(org: k.org, subject: k.subject, secret: k.secret)), into: &w)
                }
                do {
                    try FileOps.pwriteAll(subjectsFile.fd, w.bytes[...], at: subjectsEnd, path: subjectsFile.path)
                } catch {
                    lock.withLock { pending.insert(contentsOf: newKeys, at: 0) }
                    throw error
                }
                subjectsEnd += Int64(w.bytes.count)
                toSync.append(subjectsFile)
            }
            guard let firstSeq = starts.first?.seq else { return }
            let f = try currentFile(startingAt: firstSeq)
            try f.append(rows.bytes, rows: starts)
            if let h = f.handle { toSync.append(h) }
        }
    }

    /// The row of a value but its seq, encrypted under `key` with `iv` (`ValueRow`): made while
    /// its entry is prepared, off the serial path.
    public func sealedRow(
        key: SubjectKey, iv: UnsafeRawBufferPointer,
        fields: ((String, UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) -> Void
    ) -> [UInt8]? {
        ValueRow.seal(key: key, iv: iv, fields: fields)
    }

    /// The file the next rows go to: the last one, or a new one when it is full.
    private func currentFile(startingAt seq: UInt64) throws -> ValuesFile {
        if let last = files.last, last.end < Self.maxFile { return last }
        let name = String(repeating: "0", count: max(0, 20 - String(seq).count)) + String(seq) + ".values"
        let f = ValuesFile(path: directory + "/values/" + name, firstSeq: seq)
        try f.openForAppend()
        try FileOps.fsyncDirectory(directory + "/values")
        files.last?.closeForAppend()
        files.append(f)
        return f
    }

    /// Makes the written rows and keys durable (fdatasync of each file written).
    public func sync() throws {
        let fs: [FileHandleRef] = ioLock.withLock {
            defer { toSync.removeAll() }
            return toSync
        }
        var seen = Set<Int32>()
        for f in fs where seen.insert(f.fd).inserted { try FileOps.fdatasync(f.fd, path: f.path) }
    }

    /// Removes the rows of the entries in `range`: a purged segment's, whose retention is over
    /// (format-spec.md §12.4). A file wholly inside goes; one partly inside is rewritten
    /// without them. The keys stay: other entries of the same subjects may still need them.
    public func drop(_ range: Range<UInt64>) throws {
        guard !readOnly else { throw AuditError(.invalidArgument, "\(directory) is open read-only") }
        guard !range.isEmpty else { return }
        try ioLock.withLock {
            var gone: Set<Int> = []
            for (i, f) in files.enumerated() {
                let last = i + 1 == files.count
                let end = last ? UInt64.max : files[i + 1].firstSeq
                guard f.firstSeq < range.upperBound, end > range.lowerBound else { continue }
                if !last, range.lowerBound <= f.firstSeq, end <= range.upperBound {
                    f.closeForAppend()
                    try FileOps.unlink(f.path)
                    gone.insert(i)
                } else {
                    _ = try f.rewrite(without: range)
                }
            }
            files = files.enumerated().filter { !gone.contains($0.offset) }.map(\.element)
            try FileOps.fsyncDirectory(directory + "/values")
        }
    }

    /// Cuts every row at or above `seq` (recovery: rows of entries the log does not hold).
    public func cut(from seq: UInt64) throws {
        try ioLock.withLock {
            while let last = files.last, last.firstSeq >= seq {
                last.closeForAppend()
                try FileOps.unlink(last.path)
                files.removeLast()
            }
            try files.last?.cut(from: seq)
            try files.last?.openForAppend()
        }
    }
}
