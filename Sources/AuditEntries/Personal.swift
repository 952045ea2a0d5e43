import AuditBase

/// Personal fields (format-spec.md §5.4): which fields of an entry name a person, and the
/// committed form that stands for them in the signed bytes.
///
/// A subject's protected values in an entry are covered by one commitment (`Group`), stored in
/// the canonical bytes as `{"$c": C, "$s": S}` (base64url) in the first of its fields in path
/// order and `{"$s": S}` in the others, where `C` hashes a 16-byte random nonce with the values
/// (the commitment hides them) and `S` is the subject tag, the same in every entry of one
/// subject of one org. The
/// values and their nonce live in the personal store, encrypted under the subject's key; erasure
/// destroys the key, and every hash, link and proof still holds. A writer can never send an
/// object where a committed field stands (the schema refuses it), so an object there is
/// always a commitment.
public enum Personal {
    /// Bytes of a commitment's nonce.
    public static let nonceSize = 16
    /// Metadata keys one entry may declare personal.
    public static let maxDeclared = 16
    /// Target types that name a person.
    static let personTargets: [StaticString] = ["user", "person"]

    /// `SHA-256(0x00 || nonce || UTF-8 value)`: a group of one (`Group`), which is never too
    /// long to frame (it is not framed).
    public static func commitment(nonce: [UInt8], value: String) -> Hash {
        commitment(nonce: nonce, paths: [""], values: [value]) ?? .zero
    }

    /// The committed form: `{"$c":…,"$s":…}` for the field that holds its group's commitment,
    /// `{"$s":…}` for the others (§5.4.1).
    static func committed(_ c: Hash?, _ tag: SubjectTag) -> JSONValue {
        let s = JSONMember("$s", .string(tag.text))
        guard let c else { return .object([s]) }
        return .object([JSONMember("$c", .string(Base64URL.encode(c.bytes))), s])
    }

    /// The commitment (nil for a field whose group's commitment another field holds) and
    /// subject tag of a committed value; nil for a clear one.
    public static func commitment(of v: JSONValue) -> (c: Hash?, s: SubjectTag)? {
        guard case .object(let m) = v, m.count == 1 || m.count == 2,
            let s = v["$s"]?.stringValue.flatMap(SubjectTag.init(text:))
        else { return nil }
        guard m.count == 2 else { return (nil, s) }
        guard let c = v["$c"]?.stringValue.flatMap(Base64URL.decode).flatMap(Hash.init(bytes:)) else { return nil }
        return (c, s)
    }

    /// What the index keeps as the id of a committed party: the subject tag, never the value.
    public static func indexID(tag: SubjectTag) -> String { "$s:" + tag.text }

    /// What the index keeps as a committed actor: `human:` and its `indexID` (an actor's id is
    /// committed only when its type is `human`, by `plan`'s rule).
    public static func indexActor(tag: SubjectTag) -> String { "human:" + indexID(tag: tag) }

    /// A committed field of a stored entry.
    public struct Committed: Sendable, Equatable {
        /// Its path: `actor.id`, `source.ip`, `metadata.email`…
        public var path: String
        /// The commitment of its group, when this field holds it (`Group`).
        public var commitment: Hash?
        /// The subject tag.
        public var tag: SubjectTag
    }

    /// The committed fields of a stored entry, in path order (`groups` says how they open).
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
        return out.sorted { precedes($0.path, $1.path) }
    }

    /// The action of an erasure record (format-spec.md §5.4.3).
    public static let erasureAction = "data_subject.erased"
    /// `erasureAction`'s bytes.
    public static let erasureActionBytes = Array(erasureAction.utf8)

    /// Whether a parsed stored entry holds any committed field (a cheap byte test first).
    public static func mayHoldCommitments(_ content: [UInt8]) -> Bool {
        // `{"$c":` appears in canonical bytes only as a commitment: writers' strings escape
        // nothing that would make it, and a key cannot start with `$`.
        // (memmem: every entry is asked when the log is verified; a byte loop was 7 % of it.)
        content.withUnsafeBufferPointer { mayHoldCommitments($0) }
    }

    /// `mayHoldCommitments` over bytes in place.
    public static func mayHoldCommitments(_ content: UnsafeBufferPointer<UInt8>) -> Bool {
        commitmentNeedle.withUTF8Buffer {
            ByteSearch.contains(UnsafeRawBufferPointer(content), UnsafeRawBufferPointer($0))
        }
    }

    /// How a commitment object opens (§5.4.1): the one mark of one, in canonical bytes.
    static let commitmentNeedle: StaticString = #"{"$c":""#

    /// A field to commit: its path, whose it is, and its value. `V` is how its subject and value
    /// are read: `String` in the general path, the bytes of the entry in the fast one (which
    /// makes no string of them).
    struct Field<V: PersonalValue> {
        var object: String
        var member: String
        var path: String
        var subject: V
        var value: V
    }

    /// Which fields of an entry are personal, and whose (format-spec.md §5.4.1): the one rule
    /// both prepare paths follow. `member(object, key)` is a string member of a top-level
    /// object of the entry, `declared` its `personal` keys and `subjects` their named subjects.
    static func plan<V: PersonalValue>(
        declared: [String] = [], subjects: [String: V] = [:], _ member: (String, String) -> V?
    ) throws(EntryError) -> [Field<V>] {
        let humanActor = member("actor", "type")?.equals("human") == true ? member("actor", "id") : nil
        let humanPrincipal =
            member("on_behalf_of", "type")?.equals("human") == true ? member("on_behalf_of", "id") : nil
        let personTarget =
            member("target", "type").map { t in personTargets.contains { t.equals($0) } } == true
            ? member("target", "id") : nil
        var out: [Field<V>] = []
        out.reserveCapacity(7 + declared.count)
        // A party's id is its subject: read once (`value`), not again for its own field.
        func add(_ o: String, _ k: String, _ path: String, _ subject: V?, value: V? = nil) {
            if let subject, let v = value ?? member(o, k) {
                out.append(Field(object: o, member: k, path: path, subject: subject, value: v))
            }
        }
        add("actor", "id", "actor.id", humanActor, value: humanActor)
        add("actor", "name", "actor.name", humanActor)
        add("on_behalf_of", "id", "on_behalf_of.id", humanPrincipal, value: humanPrincipal)
        add("target", "id", "target.id", personTarget, value: personTarget)
        add("target", "name", "target.name", personTarget)
        add("source", "ip", "source.ip", humanActor)
        add("source", "user_agent", "source.user_agent", humanActor)
        for k in declared {
            guard let s = subjects[k] ?? humanActor ?? humanPrincipal ?? personTarget else {
                throw EntryError(
                    "subjects.\(k)",
                    "metadata '\(k)' is declared personal but names no subject: the entry has no human party, so name one with subjects: {\"\(k)\": \"<person id>\"}"
                )
            }
            add("metadata", k, "metadata." + k, s)
        }
        return out
    }

    /// Commits `fields` of an entry of `org`: per subject a nonce, the one commitment of its
    /// fields (`Group`), its key and one row for the personal store, sealed here (off the serial
    /// path). `made[i]` is `fields[i]`'s part (the commitment when it holds it) and the index of
    /// its subject's row in `rows`.
    static func commit<V: PersonalValue>(
        _ fields: [Field<V>], org: String, keys: SubjectKeys?
    ) throws(EntryError) -> (made: [Made], rows: [SealedRow]) {
        let n = fields.count
        guard n > 0 else { return ([], []) }
        // Every nonce and every row's iv from one draw (a row per subject: at most one per
        // field), a slice of the thread's pool.
        let random: ArraySlice<UInt8>
        do { random = try SecureRandom.slice(nonceSize * 2 * n) } catch {
            throw EntryError("", "\(error)")
        }
        // A row per subject, in the order subjects first appear (nearly always one): each
        // field's row is unset (-1) until its subject's row is made.
        var made = [Made](repeating: Made(commitment: .zero, row: -1), count: n)
        var rows: [SealedRow] = []
        var orgText = org
        let failure: EntryError? = random.withUnsafeBytes { r in
            // A subject's fields, by index (on the stack: no array an entry).
            withUnsafeTemporaryAllocation(of: Int.self, capacity: n) { group in
                func nonce(_ k: Int) -> UnsafeRawBufferPointer {
                    UnsafeRawBufferPointer(rebasing: r[(k * nonceSize)..<((k + 1) * nonceSize)])
                }
                for i in 0..<n where made[i].row < 0 {
                    let subject = fields[i].subject
                    guard
                        let key = orgText.withUTF8({ o in
                            subject.withBytes { keys?.key(org: UnsafeRawBufferPointer(o), subject: $0) }
                        })
                    else {
                        return EntryError(
                            "",
                            "the personal store takes no new subjects now (it is full or cannot be written); retry later"
                        )
                    }
                    let row = rows.count
                    // One nonce for the subject's fields in this entry: their values are committed
                    // together, by the one field that holds `$c` (§5.4.1).
                    let shared = nonce(row)
                    var count = 0
                    // The row's fields are written straight into its buffer: no list of them is made.
                    let body = keys?.sealedRow(key: key, iv: nonce(n + row)) { add in
                        for j in i..<n where made[j].row < 0 && fields[j].subject.same(as: subject) {
                            fields[j].value.withBytes { v in add(fields[j].path, shared, v) }
                            made[j] = Made(commitment: .zero, row: row, tail: key.committedTail)
                            group[count] = j
                            count += 1
                        }
                    }
                    guard let body else {
                        return EntryError(
                            "",
                            "the personal store could not seal this entry's personal values: together over 64 KiB (shorten them) or the cipher failed (retry later)"
                        )
                    }
                    // The group's commitment, held by its first field in path order (nearly always
                    // the plan's order already).
                    var members = UnsafeMutableBufferPointer(rebasing: group[0..<count])
                    if count > 1 { members.sort { precedes(fields[$0].path, fields[$1].path) } }
                    var opening = Opening(nonce: shared, fields: count)
                    for j in members {
                        fields[j].path.withBytes { p in fields[j].value.withBytes { opening.add(path: p, value: $0) } }
                    }
                    guard let c = opening.finish() else {
                        return EntryError(
                            "", "a personal field's name is over 255 bytes or its value over 65,535: shorten it")
                    }
                    made[members[0]].commitment = c
                    made[members[0]].head = true
                    rows.append(SealedRow(key: key, body: body))
                }
                return nil
            }
        }
        if let failure { throw failure }
        return (made, rows)
    }

    /// A committed field of an entry being prepared: its commitment, and the index of its
    /// subject's row (whose key's tag is the field's `$s`).
    struct Made {
        var commitment: Hash
        var row: Int
        /// The row's key's `committedTail`, valid while the row holds the key: the canonical
        /// bytes are written without touching the key, whose header every thread writing an
        /// entry of a popular subject would otherwise write in turn.
        var tail = UnsafeRawBufferPointer(start: nil, count: 0)
        /// Whether this field holds its group's commitment (`{"$c":…,"$s":…}`); the others of
        /// its subject are written `{"$s":…}`.
        var head = false
    }

    /// The committed form's canonical bytes: `{"$c":"<base64url>","$s":"<base64url>"}` for the
    /// field that holds its group's commitment, `{"$s":"<base64url>"}` for the others, the
    /// tag's part made once with its key (`SubjectKey.committedTail`).
    static func appendCommitted(_ m: Made, to out: inout [UInt8]) {
        guard m.head else {
            out.append(0x7B)
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: m.tail[2...]))
            return
        }
        commitmentNeedle.withUTF8Buffer { out.append(contentsOf: $0) }
        m.commitment.withBytes { Base64URL.append($0, to: &out) }
        out.append(contentsOf: m.tail)
    }

    /// `","$s":"<tag>"}`: how a committed form under `tag` ends.
    static func committedTail(_ tag: SubjectTag) -> [UInt8] {
        Array(#"","$s":""#.utf8) + Array(tag.text.utf8) + [0x22, 0x7D]
    }

    /// Whether a stored entry names `subject` in the clear (format-spec.md §5.4.3): a field the
    /// rule above makes personal holds it as a clear string (an entry written before
    /// `personal_fields = commit`), or a metadata string is exactly it (a clear entry does not
    /// keep its writer's `personal` list, so any metadata may be the person's). Such an entry
    /// cannot be erased, only withheld.
    public static func namesInClear(_ v: JSONValue, subject: String) -> Bool {
        let fields = try? plan { o, k in v[o]?[k]?.stringValue }
        if fields?.contains(where: { $0.subject == subject }) == true { return true }
        guard case .object(let m)? = v["metadata"] else { return false }
        return m.contains { $0.value.stringValue == subject }
    }

    /// The digest an erasure record signs of the entries it withholds (metadata
    /// `withheld_sha256`): hex SHA-256 of their seqs in increasing order, in decimal, joined
    /// by commas (`3,17,42`).
    public static func withheldDigest(_ seqs: [UInt64]) -> String {
        SHA256.hash(Array(seqs.sorted().map(String.init).joined(separator: ",").utf8)).hex
    }

    /// Replaces the personal values among the top-level `members` of a validated entry by
    /// their commitments, and returns what the personal store keeps of each.
    static func protect(
        _ members: inout [JSONMember], org: String, declared: [String], subjects: [String: String], keys: SubjectKeys
    ) throws(EntryError) -> (actorTag: SubjectTag?, rows: [SealedRow]) {
        let snapshot = members
        let fields = try plan(declared: declared, subjects: subjects) { o, k in
            snapshot.first { $0.key == o }?.value[k]?.stringValue
        }
        let (made, rows) = try commit(fields, org: org, keys: keys)
        var actorTag: SubjectTag?
        for (f, o) in zip(fields, made) {
            let tag = rows[o.row].key.tag
            if f.path == "actor.id" { actorTag = tag }
            guard let oi = members.firstIndex(where: { $0.key == f.object }), case .object(var m) = members[oi].value,
                let mi = m.firstIndex(where: { $0.key == f.member })
            else { continue }
            m[mi].value = committed(o.head ? o.commitment : nil, tag)
            members[oi].value = .object(m)
        }
        return (actorTag, rows)
    }
}
