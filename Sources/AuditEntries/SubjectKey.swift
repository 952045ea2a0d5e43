import AuditBase
import Synchronization

/// A subject's key: 32 random bytes, kept only in the personal store and destroyed when the
/// subject is erased. Its tag names the subject in entries without naming the person.
///
/// What preparing an entry reads of a key (its secret, tag, committed form's tail and name)
/// also lies in one buffer of its own, read through pointers: the event loops and the
/// commit thread read popular subjects' keys at once, and each retain of an array or string of
/// the key would write its header, a cache line the other threads then fetch again.
public final class SubjectKey: @unchecked Sendable {
    /// The org.
    public let org: String
    /// The subject's id as writers send it (`usr_123`).
    public let subject: String
    /// The key.
    public let secret: [UInt8]
    /// The first 16 bytes of `SHA-256(0x01 || secret || org || 0x00 || subject)`.
    public let tag: SubjectTag
    /// What the index keeps as the actor of an entry whose actor this subject is
    /// (`human:$s:<tag>`: only a human actor is committed), made once.
    public let actorIndexID: String
    /// Set by the personal store when it destroys the key (an erasure): a row sealed under it
    /// that has not been written yet never will be.
    public let destroyed = Atomic<Bool>(false)
    /// `secret`, the tag's bytes, `committedTail` and `org 0x00 subject`, in that order
    /// (`Layout`); immutable, zeroed when the key is freed.
    private let hot: UnsafeMutableRawBufferPointer
    private let secretIsAESKey: Bool

    private enum Layout {
        static let secret = 0..<32
        static let tag = 32..<48
        /// `","$s":"` (8 bytes), the tag (22), `"}`.
        static let tail = 48..<80
        static let name = 80
    }

    /// A subject's key.
    public init(org: String, subject: String, secret: [UInt8]) {
        self.org = org
        self.subject = subject
        self.secret = secret
        tag = SubjectTag(digest: SHA256.hash([0x01] + secret + Array(org.utf8) + [0x00] + Array(subject.utf8)))
        actorIndexID = Personal.indexActor(tag: tag)
        secretIsAESKey = secret.count == Layout.secret.count
        let tail = Personal.committedTail(tag)
        let name = Array(org.utf8) + [0x00] + Array(subject.utf8)
        hot = .allocate(byteCount: Layout.name + name.count, alignment: 16)
        hot.initializeMemory(as: UInt8.self, repeating: 0)
        func put<C: Collection<UInt8>>(_ bytes: C, at start: Int, max: Int) {
            for (i, b) in bytes.prefix(max).enumerated() { hot[start + i] = b }
        }
        put(secret, at: Layout.secret.lowerBound, max: Layout.secret.count)
        put(tag.bytes, at: Layout.tag.lowerBound, max: Layout.tag.count)
        put(tail, at: Layout.tail.lowerBound, max: Layout.tail.count)
        put(name, at: Layout.name, max: name.count)
    }

    deinit {
        hot.initializeMemory(as: UInt8.self, repeating: 0)
        hot.deallocate()
    }

    private func bytes(_ r: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(hot)[r])
    }

    /// `secret`'s bytes, valid while the key lives; none when the secret is not 32 bytes (no
    /// cipher then takes it: AES-256 refuses a key of any other length).
    public var secretBytes: UnsafeRawBufferPointer { secretIsAESKey ? bytes(Layout.secret) : bytes(0..<0) }
    /// The tag's 16 bytes, valid while the key lives.
    public var tagBytes: UnsafeRawBufferPointer { bytes(Layout.tag) }
    /// How a value committed under this key ends in the canonical bytes (`","$s":"<tag>"}`).
    var committedTail: UnsafeRawBufferPointer { bytes(Layout.tail) }

    /// Whether this is the key of `subject` in `org` (their UTF-8 bytes).
    public func isKey(org o: UnsafeRawBufferPointer, subject s: UnsafeRawBufferPointer) -> Bool {
        let name = bytes(Layout.name..<hot.count)
        guard name.count == o.count + 1 + s.count else { return false }
        return UnsafeRawBufferPointer(rebasing: name[0..<o.count]).same(as: o) && name[o.count] == 0
            && UnsafeRawBufferPointer(rebasing: name[(o.count + 1)...]).same(as: s)
    }

    /// `data` under AES-256-CTR with this key from counter block `iv` (16 random bytes, used
    /// once). The same call encrypts and decrypts; nil only if the cipher fails.
    public func crypt(_ data: [UInt8], iv: ArraySlice<UInt8>) -> [UInt8]? { AESCTR.crypt(data, key: secret, iv: iv) }
}

/// Where entry preparation gets subjects' keys, and has its values sealed: the personal store.
public protocol SubjectKeys: AnyObject, Sendable {
    /// The key of `subject` in `org`, made if it has none; nil when no key can be made.
    func key(org: String, subject: String) -> SubjectKey?
    /// `key(org:subject:)` of names given as their UTF-8 bytes (a value read where it lies).
    func key(org: UnsafeRawBufferPointer, subject: UnsafeRawBufferPointer) -> SubjectKey?
    /// The row the store will keep for one subject's fields of an entry, but its seq (which
    /// the sequencer assigns), encrypted under `key` from counter block `iv` (16 random
    /// bytes): made while the entry is prepared, on any thread. `fields` calls `add(path,
    /// nonce, value)` for each field in turn, the bytes valid for that call. Nil when the
    /// row cannot be made (too large, or the cipher fails).
    func sealedRow(
        key: SubjectKey, iv: UnsafeRawBufferPointer,
        fields: ((String, UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) -> Void
    ) -> [UInt8]?
}

extension SubjectKeys {
    /// `key(org:subject:)` of strings made of the bytes.
    public func key(org: UnsafeRawBufferPointer, subject: UnsafeRawBufferPointer) -> SubjectKey? {
        key(org: String(decoding: org, as: UTF8.self), subject: String(decoding: subject, as: UTF8.self))
    }

    /// `sealedRow(key:iv:fields:)` of fields given as a list.
    public func sealedRow(key: SubjectKey, fields: [SealedField], iv: ArraySlice<UInt8>) -> [UInt8]? {
        iv.withUnsafeBytes { ivBytes in
            sealedRow(key: key, iv: ivBytes) { add in
                for f in fields {
                    f.nonce.withUnsafeBytes { nonce in f.value.withBytes { add(f.path, nonce, $0) } }
                }
            }
        }
    }
}

/// One field as a sealed row holds it: its path, the commitment's nonce and the value.
public struct SealedField: Sendable {
    /// `actor.id`, `metadata.email`…
    public let path: String
    /// The commitment's nonce (16 bytes).
    public let nonce: ArraySlice<UInt8>
    /// The clear value.
    public let value: String

    /// A field.
    public init(path: String, nonce: ArraySlice<UInt8>, value: String) {
        self.path = path
        self.nonce = nonce
        self.value = value
    }
}

/// What the personal store keeps of one subject's fields of an entry: the row but its seq,
/// encrypted under the subject's key (`SubjectKeys.sealedRow`). Written with the entry's group
/// commit, before the entry's fdatasync.
public struct SealedRow: Sendable {
    /// The subject's key.
    public let key: SubjectKey
    /// The row after its seq.
    public let body: [UInt8]

    /// A sealed row.
    public init(key: SubjectKey, body: [UInt8]) {
        self.key = key
        self.body = body
    }
}

/// A subject's tag (format-spec.md §5.4.1): 16 bytes, written as 22 base64url characters. It
/// is the same in every entry of one subject of one org, and names no one once the subject's
/// key is destroyed.
public struct SubjectTag: Sendable, Hashable, CustomStringConvertible {
    /// The 16 bytes.
    public let bytes: [UInt8]
    /// As written in entries.
    public let text: String

    /// The tag made of the first 16 bytes of `digest`.
    public init(digest: Hash) { self.init(unchecked: Array(digest.bytes.prefix(16))) }

    private init(unchecked b: [UInt8]) {
        bytes = b
        text = Base64URL.encode(b)
    }

    /// A tag of exactly 16 bytes.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == 16 else { return nil }
        self.init(unchecked: Array(bytes))
    }

    /// A tag as written (22 base64url characters).
    public init?(text: String) {
        guard text.utf8.count == 22, let b = Base64URL.decode(text) else { return nil }
        self.init(bytes: b)
    }

    public static func == (a: SubjectTag, b: SubjectTag) -> Bool { a.bytes == b.bytes }
    public func hash(into h: inout Hasher) { bytes.withUnsafeBytes { h.combine(bytes: $0) } }
    public var description: String { text }
}
