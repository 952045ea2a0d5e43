import AuditBase

/// Personal fields (format-spec.md §5.4): which fields of an entry name a person, and the
/// committed form that stands for them in the signed bytes.
///
/// A protected value is stored in the canonical bytes as `{"$c": C, "$s": S}`, where
/// `C = SHA-256(0x00 || nonce || value)` (a 16-byte random nonce: the commitment hides the
/// value) and `S` is the subject tag, the same in every entry of one subject of one org. The
/// value and its nonce live in the personal store, encrypted under the subject's key; erasure
/// destroys the key, and every hash, link and proof still holds. A writer can never send an
/// object where a committed field stands (the schema refuses it), so an object there is
/// always a commitment.
public enum Personal {
    /// Bytes of a commitment's nonce.
    public static let nonceSize = 16
    /// Metadata keys one entry may declare personal.
    public static let maxDeclared = 16
    /// Target types that name a person.
    public static let personTargets: Set<String> = ["user", "person"]

    /// `SHA-256(0x00 || nonce || UTF-8 value)`.
    public static func commitment(nonce: [UInt8], value: String) -> Hash {
        var b: [UInt8] = [0x00]
        b.reserveCapacity(1 + nonce.count + value.utf8.count)
        b.append(contentsOf: nonce)
        b.append(contentsOf: value.utf8)
        return SHA256.hash(b)
    }

    /// The committed form.
    static func committed(_ c: Hash, _ tag: Hash) -> JSONValue {
        .object([JSONMember("$c", .string(c.hex)), JSONMember("$s", .string(tag.hex))])
    }

    /// The commitment and subject tag of a committed value; nil for a clear one.
    public static func commitment(of v: JSONValue) -> (c: Hash, s: Hash)? {
        guard case .object(let m) = v, m.count == 2, let c = v["$c"]?.stringValue.flatMap(Hash.init(hex:)),
            let s = v["$s"]?.stringValue.flatMap(Hash.init(hex:))
        else { return nil }
        return (c, s)
    }

    /// What the index keeps as the id of a committed party: the subject tag, never the value.
    public static func indexID(tag: Hash) -> String { "$s:" + tag.hex }

    /// A committed field of a stored entry.
    public struct Committed: Sendable, Equatable {
        /// Its path: `actor.id`, `source.ip`, `metadata.email`…
        public var path: String
        /// The commitment.
        public var commitment: Hash
        /// The subject tag.
        public var tag: Hash
    }

    /// The committed fields of a stored entry, in path order.
    public static func commitments(in v: JSONValue) -> [Committed] {
        var out: [Committed] = []
        for top in ["actor", "metadata", "on_behalf_of", "source", "target"] {
            guard case .object(let m)? = v[top] else { continue }
            for member in m {
                if let (c, s) = commitment(of: member.value) {
                    out.append(Committed(path: top + "." + member.key, commitment: c, tag: s))
                }
            }
        }
        return out.sorted { $0.path < $1.path }
    }

    /// Whether a parsed stored entry holds any committed field (a cheap byte test first).
    public static func mayHoldCommitments(_ content: [UInt8]) -> Bool {
        // `{"$c":` appears in canonical bytes only as a commitment: writers' strings escape
        // nothing that would make it, and a key cannot start with `$`.
        let needle: [UInt8] = Array("{\"$c\":\"".utf8)
        guard content.count >= needle.count else { return false }
        return content.withUnsafeBufferPointer { b in
            (0...(b.count - needle.count)).contains { i in
                b[i] == 0x7B && (1..<needle.count).allSatisfy { b[i + $0] == needle[$0] }
            }
        }
    }

    /// Replaces the personal values among the top-level `members` of a validated entry by
    /// their commitments, and returns what the personal store keeps of each.
    static func protect(
        _ members: inout [JSONMember], org: String, declared: [String], subjects: [String: String], keys: SubjectKeys
    ) throws(EntryError) -> [Opening] {
        func object(_ name: String) -> JSONValue? { members.first { $0.key == name }?.value }
        func member(_ o: String, _ k: String) -> String? { object(o)?[k]?.stringValue }
        let humanActor = member("actor", "type") == "human" ? member("actor", "id") : nil
        let humanPrincipal = member("on_behalf_of", "type") == "human" ? member("on_behalf_of", "id") : nil
        let personTarget =
            member("target", "type").map { personTargets.contains($0) } == true ? member("target", "id") : nil

        // (object, member, subject) in a fixed order.
        var plan: [(String, String, String)] = []
        if let s = humanActor { plan += [("actor", "id", s), ("actor", "name", s)] }
        if let s = humanPrincipal { plan.append(("on_behalf_of", "id", s)) }
        if let s = personTarget { plan += [("target", "id", s), ("target", "name", s)] }
        if let s = humanActor { plan += [("source", "ip", s), ("source", "user_agent", s)] }
        for k in declared {
            guard let s = subjects[k] ?? humanActor ?? humanPrincipal ?? personTarget else {
                throw EntryError(
                    "subjects.\(k)",
                    "metadata '\(k)' is declared personal but names no subject: the entry has no human party, so name one with subjects: {\"\(k)\": \"<person id>\"}"
                )
            }
            plan.append(("metadata", k, s))
        }
        plan = plan.filter { member($0.0, $0.1) != nil }
        guard !plan.isEmpty else { return [] }
        let random: [UInt8]
        do { random = try SecureRandom.bytes(nonceSize * plan.count) } catch {
            throw EntryError("", "\(error)")
        }
        var openings: [Opening] = []
        openings.reserveCapacity(plan.count)
        for (i, (o, k, subject)) in plan.enumerated() {
            guard let key = keys.key(org: org, subject: subject) else {
                throw EntryError(
                    "", "the personal store takes no new subjects now (it is full or cannot be written); retry later")
            }
            let value = member(o, k) ?? ""
            let nonce = Array(random[(i * nonceSize)..<((i + 1) * nonceSize)])
            let c = commitment(nonce: nonce, value: value)
            guard let oi = members.firstIndex(where: { $0.key == o }), case .object(var m) = members[oi].value,
                let mi = m.firstIndex(where: { $0.key == k })
            else { continue }
            m[mi].value = committed(c, key.tag)
            members[oi].value = .object(m)
            openings.append(Opening(path: o + "." + k, key: key, nonce: nonce, value: value))
        }
        return openings
    }
}

/// A subject's key: 32 random bytes, kept only in the personal store and destroyed when the
/// subject is erased. Its tag names the subject in entries without naming the person.
public final class SubjectKey: Sendable {
    /// The org.
    public let org: String
    /// The subject's id as writers send it (`usr_123`).
    public let subject: String
    /// The key.
    public let secret: [UInt8]
    /// `SHA-256(0x01 || secret || org || 0x00 || subject)`.
    public let tag: Hash
    private let mac: HMACSHA256

    /// A subject's key.
    public init(org: String, subject: String, secret: [UInt8]) {
        self.org = org
        self.subject = subject
        self.secret = secret
        tag = SHA256.hash([0x01] + secret + Array(org.utf8) + [0x00] + Array(subject.utf8))
        mac = HMACSHA256(key: secret)
    }

    /// `data` XOR the key stream of `iv`: blocks HMAC-SHA256(key, iv || counter32be). The
    /// same call encrypts and decrypts; an iv is used once.
    public func crypt(_ data: [UInt8], iv: [UInt8]) -> [UInt8] {
        var out = data
        var block = 0
        var at = 0
        while at < out.count {
            let b = UInt32(block)
            let ks = mac.mac(iv, [UInt8(b >> 24), UInt8((b >> 16) & 0xFF), UInt8((b >> 8) & 0xFF), UInt8(b & 0xFF)])
            for j in 0..<min(32, out.count - at) { out[at + j] ^= ks[j] }
            at += 32
            block += 1
        }
        return out
    }
}

/// Where entry preparation gets subjects' keys: the personal store.
public protocol SubjectKeys: AnyObject, Sendable {
    /// The key of `subject` in `org`, made if it has none; nil when no key can be made.
    func key(org: String, subject: String) -> SubjectKey?
}

/// One protected value as the personal store keeps it: the field, the subject's key, the
/// nonce and the value. Written with the entry's group commit, before the entry's fdatasync.
public struct Opening: Sendable {
    /// `actor.id`, `metadata.email`…
    public let path: String
    /// The subject's key.
    public let key: SubjectKey
    /// The commitment's nonce.
    public let nonce: [UInt8]
    /// The clear value.
    public let value: String

    /// An opening.
    public init(path: String, key: SubjectKey, nonce: [UInt8], value: String) {
        self.path = path
        self.key = key
        self.nonce = nonce
        self.value = value
    }
}
