import AuditBase
import AuditEntries
import Foundation

/// The personal store (format-spec.md §5.4.2): the clear values that entries' commitments stand
/// for, encrypted under their subjects' keys, outside the segments, the tree, the archive and
/// the bucket. It is the one part of a data directory that forgets: erasing a subject destroys
/// its key (`destroyKey`), and its rows can never be read again.
///
/// `DATA/personal/`:
/// - `subjects`: one record per subject key (org, subject id, 32 random bytes); rewritten whole
///   without a key when its subject is erased.
/// - `values/<first seq>.values`: rows `(seq, tag, iv, path, ciphertext)` in seq order,
///   appended with each group commit and synced before the segment (an entry is never durable
///   without its values); a file is closed at 16 MiB.
/// - `erasures`: completed erasures (tag, the record's seq, authority): nothing personal.
/// - `erasing`: the erasure in progress, if any (`ErasureIntent`).
public final class PersonalStore: SubjectKeys, @unchecked Sendable {
    /// The directory (`DATA/personal`).
    public let directory: String
    /// Subjects a store holds at most; beyond it new subjects are refused (memory is bounded).
    public static let maxSubjects = 4_000_000
    /// A values file is closed once it holds this many bytes.
    public static let maxFile: Int64 = 16 << 20
    /// Rows between two entries of a file's in-memory sample index.
    static let sampleEvery = 64

    /// Guards the keys and erasures in memory; taken by entry preparation on every event
    /// loop, so never held across file I/O.
    private let lock = NSLock()
    /// Guards the files (the journals' ends, the values files, what awaits a sync); taken
    /// before `lock` when both are needed.
    private let ioLock = NSLock()
    private var keys: [Name: SubjectKey] = [:]
    private var byTag: [SubjectTag: SubjectKey] = [:]
    private var pending: [SubjectKey] = []
    private var erasures: [SubjectTag: ErasureRecord] = [:]
    private var erasuresByRecord: [UInt64: ErasureRecord] = [:]
    private var subjectsFile: FileHandleRef
    private var subjectsEnd: Int64
    private let erasuresFile: FileHandleRef
    private var erasuresEnd: Int64
    private var files: [ValuesFile] = []
    private var toSync: [FileHandleRef] = []
    /// The entries erasures withheld (written in the clear, so not erasable).
    public let withheld: WithheldEntries

    /// Whether this is a reader's view (`auditctl verify` beside a running daemon): nothing
    /// is created, cut or written.
    public let readOnly: Bool

    /// Opens (creating if needed) the store in `directory`, cutting torn tails; read-only, it
    /// reads what is there (an absent store is an empty one) and changes nothing.
    public init(directory: String, readOnly: Bool = false) throws {
        self.directory = directory
        self.readOnly = readOnly
        if !readOnly {
            try FileOps.makeDirectory(directory, mode: 0o700)
            try FileOps.makeDirectory(directory + "/values", mode: 0o700)
        }
        (subjectsFile, subjectsEnd) = try Self.openJournal(directory + "/subjects", readOnly: readOnly)
        (erasuresFile, erasuresEnd) = try Self.openJournal(directory + "/erasures", readOnly: readOnly)
        withheld = try WithheldEntries(directory: directory, readOnly: readOnly)
        for (_, body) in try Self.read(subjectsFile, end: subjectsEnd) {
            guard let p = KeyRecord.decode(body) else { continue }
            let k = SubjectKey(org: p.org, subject: p.subject, secret: p.secret)
            keys[Name(org: p.org, subject: p.subject)] = k
            byTag[k.tag] = k
        }
        for (_, body) in try Self.read(erasuresFile, end: erasuresEnd) {
            if let r = ErasureRecord.decode(body) {
                erasures[r.tag] = r
                erasuresByRecord[r.recordSeq] = r
            }
        }
        let names =
            FileOps.exists(directory + "/values")
            ? try FileOps.list(directory + "/values").filter { $0.hasSuffix(".values") }.sorted() : []
        for n in names {
            guard let first = UInt64(n.dropLast(".values".count)) else { continue }
            files.append(ValuesFile(path: directory + "/values/" + n, firstSeq: first))
        }
        if !readOnly, let last = files.last { try last.openForAppend() }
    }

    /// A subject of an org, as keys are found.
    /// Looked up on every prepared entry with a person in it: hashed once, over its bytes
    /// with the process's seeded hasher (a writer cannot aim subjects at one bucket), and the
    /// table then mixes that one word rather than two strings through String's hashing.
    private struct Name: Hashable {
        let org: String
        let subject: String
        let digest: Int

        init(org: String, subject: String) {
            self.org = org
            self.subject = subject
            var h = Hasher()
            func add(_ s: String) {
                if s.utf8.withContiguousStorageIfAvailable({ h.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
                    for b in s.utf8 { h.combine(b) }
                }
                h.combine(UInt8(0xFF))
            }
            add(org)
            add(subject)
            digest = h.finalize()
        }

        func hash(into h: inout Hasher) { h.combine(digest) }
        static func == (a: Name, b: Name) -> Bool { a.digest == b.digest && a.subject == b.subject && a.org == b.org }
    }

    /// Opens a journal for appending, its torn tail cut; returns it and its valid end.
    /// Read-only, an absent journal reads as empty (`/dev/null`).
    static func openJournal(_ path: String, readOnly: Bool) throws -> (FileHandleRef, Int64) {
        let f: FileHandleRef
        if readOnly {
            let p = FileOps.exists(path) ? path : "/dev/null"
            f = FileHandleRef(fd: try FileOps.open(p, O_RDONLY | O_CLOEXEC), path: p)
        } else {
            f = FileHandleRef(fd: try FileOps.openOrCreate(path, mode: 0o600), path: path)
        }
        let size = try FileOps.size(f.fd, path: f.path)
        let bytes = try FileOps.preadExact(f.fd, count: Int(size), at: 0, path: f.path)
        let end = Int64(Journal.records(bytes).end)
        if end < size, !readOnly {
            try FileOps.truncate(f.fd, to: end, path: path)
            try FileOps.fsync(f.fd, path: path)
        }
        return (f, end)
    }

    static func read(_ f: FileHandleRef, end: Int64) throws -> [(offset: Int, body: ArraySlice<UInt8>)] {
        Journal.records(try FileOps.preadExact(f.fd, count: Int(end), at: 0, path: f.path)).records
    }

    // MARK: Keys

    /// The key of `subject` in `org`, made (and written with the next group) if it has none.
    public func key(org: String, subject: String) -> SubjectKey? {
        let n = Name(org: org, subject: subject)
        return lock.withLock {
            if let k = keys[n] { return k }
            guard !readOnly, keys.count < Self.maxSubjects, let secret = try? SecureRandom.bytes(32) else { return nil }
            let k = SubjectKey(org: org, subject: subject, secret: secret)
            keys[n] = k
            byTag[k.tag] = k
            pending.append(k)
            return k
        }
    }

    /// The key of `subject` in `org` if it has one (nothing is made).
    public func existingKey(org: String, subject: String) -> SubjectKey? {
        lock.withLock { keys[Name(org: org, subject: subject)] }
    }

    /// An actor filter (`human:usr_1`, or `usr_1`) naming a subject of `org` with a key, as
    /// the index holds it (`human:$s:<tag>`); nil when it names none (a prefix, a service).
    public func resolve(org: String, actorFilter f: String) -> String? {
        guard !f.hasSuffix("*") else { return nil }
        let id = f.hasPrefix("human:") ? String(f.dropFirst(6)) : f
        guard let k = existingKey(org: org, subject: id) else { return nil }
        return k.actorIndexID
    }

    /// The key whose tag is `tag`, if it still exists.
    public func key(tag: SubjectTag) -> SubjectKey? { lock.withLock { byTag[tag] } }

    /// The completed erasure of the subject tagged `tag`, if any.
    public func erasure(tag: SubjectTag) -> ErasureRecord? { lock.withLock { erasures[tag] } }

    /// The completed erasure recorded by entry `seq`, if any.
    public func erasure(recordSeq seq: UInt64) -> ErasureRecord? {
        lock.withLock { erasuresByRecord[seq] }
    }

    /// Every completed erasure.
    public var erasureRecords: [ErasureRecord] {
        lock.withLock { erasures.values.sorted { $0.recordSeq < $1.recordSeq } }
    }

    /// Subjects with a key.
    public var subjectCount: Int { lock.withLock { keys.count } }

    // MARK: Writing (the ledger's commit thread)

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
            for e in entries {
                for row in e.rows where !row.key.destroyed.load(ordering: .acquiring) {
                    starts.append((e.seq, rows.bytes.count))
                    ValueRow.frame(seq: e.seq, sealed: row.body, into: &rows)
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

    // MARK: Reading

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

    // MARK: Erasure

    /// Records a completed erasure (before the key is destroyed: it names no one).
    public func recordErasure(_ r: ErasureRecord) throws {
        guard !readOnly else { throw AuditError(.invalidArgument, "\(directory) is open read-only") }
        try ioLock.withLock {
            guard lock.withLock({ erasures[r.tag] == nil }) else { return }
            var w = ByteWriter()
            Journal.frame(r.encode(), into: &w)
            try FileOps.pwriteAll(erasuresFile.fd, w.bytes[...], at: erasuresEnd, path: erasuresFile.path)
            try FileOps.fdatasync(erasuresFile.fd, path: erasuresFile.path)
            erasuresEnd += Int64(w.bytes.count)
            lock.withLock {
                erasures[r.tag] = r
                erasuresByRecord[r.recordSeq] = r
            }
        }
    }

    /// Destroys the key tagged `tag`, durably: `subjects` is rewritten without it (write,
    /// fsync, rename, fsync the directory), so its rows can never be read again.
    public func destroyKey(tag: SubjectTag) throws {
        guard !readOnly else { throw AuditError(.invalidArgument, "\(directory) is open read-only") }
        // Both locks throughout: no row or key of this subject is written meanwhile, and no
        // entry is prepared under the key while the file that forgets it is being replaced.
        try ioLock.withLock {
            try lock.withLock {
                guard let k = byTag[tag] else { return }
                var w = ByteWriter(capacity: keys.count * 80)
                for x in keys.values where x !== k && !pending.contains(where: { $0 === x }) {
                    Journal.frame(
                        KeyRecord.encode(SubjectKeyParts(org: x.org, subject: x.subject, secret: x.secret)), into: &w)
                }
                let path = directory + "/subjects"
                try FileOps.replaceFile(path, contents: w.bytes, mode: 0o600)
                subjectsFile = FileHandleRef(fd: try FileOps.open(path, O_WRONLY | O_CLOEXEC), path: path)
                subjectsEnd = Int64(w.bytes.count)
                keys[Name(org: k.org, subject: k.subject)] = nil
                byTag[tag] = nil
                pending.removeAll { $0 === k }
                k.destroyed.store(true, ordering: .releasing)
            }
        }
    }
}
