import AuditBase
import AuditEntries
import Foundation
import Synchronization

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
    let lock = NSLock()
    /// Guards the files (the journals' ends, the values files, what awaits a sync); taken
    /// before `lock` when both are needed.
    let ioLock = NSLock()
    var keys: [Name: SubjectKey] = [:]
    var byTag: [SubjectTag: SubjectKey] = [:]
    var pending: [SubjectKey] = []
    var erasures: [SubjectTag: ErasureRecord] = [:]
    var erasuresByRecord: [UInt64: ErasureRecord] = [:]
    var subjectsFile: FileHandleRef
    var subjectsEnd: Int64
    let erasuresFile: FileHandleRef
    var erasuresEnd: Int64
    var files: [ValuesFile] = []
    var toSync: [FileHandleRef] = []
    /// The entries erasures withheld (written in the clear, so not erasable).
    public let withheld: WithheldEntries
    /// This store's number among the process's stores: threads' recent keys (`RecentKeys`)
    /// are one store's.
    let serial = PersonalStore.serials.add(1, ordering: .relaxed).newValue
    private static let serials = Atomic<UInt64>(0)
    /// Keys destroyed since the store opened: each one empties every thread's recent keys at
    /// that thread's next lookup (an erased key is never found there: its `destroyed` is set).
    let destroyedKeys = Atomic<UInt64>(0)

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
    struct Name: Hashable {
        let org: String
        let subject: String
        let digest: Int

        init(org: String, subject: String) {
            self.org = org
            self.subject = subject
            var o = org
            var s = subject
            digest = o.withUTF8 { o in
                s.withUTF8 { Self.digest(org: UnsafeRawBufferPointer(o), subject: UnsafeRawBufferPointer($0)) }
            }
        }

        /// The hash of a name given as its bytes: here and in each thread's recent keys
        /// (`RecentKeys`), where the entry's own bytes are looked up without a string.
        static func digest(org: UnsafeRawBufferPointer, subject: UnsafeRawBufferPointer) -> Int {
            var h = Hasher()
            h.combine(bytes: org)
            h.combine(UInt8(0xFF))
            h.combine(bytes: subject)
            h.combine(UInt8(0xFF))
            return h.finalize()
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
}
