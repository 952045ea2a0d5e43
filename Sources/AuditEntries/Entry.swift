import AuditBase
import LogProofs

/// The entry model of design §2 and its validation (format-spec.md §5.1).
///
/// A writer sends a JSON object; `Entry.prepare` validates it field by field, adds the
/// server's fields (`received_at`, `writer`), and produces the canonical bytes that are stored
/// and hashed. It runs on any thread, before sequencing: the content hash is computed here,
/// off the serial path.

/// Entry validation and canonicalisation.
public enum Entry {
    /// True for the bytes of identifiers (`org`, `action`, metadata keys): `[A-Za-z0-9_.:@/-]`.
    @inline(__always) public static func isIdentifierByte(_ c: UInt8) -> Bool {
        // One bit per ASCII byte: `-./0-9:` in the low word, `@A-Z_a-z` in the high one (a
        // test checks the masks against the alphabet).
        let low: UInt64 = 0x07FF_E000_0000_0000
        let high: UInt64 = 0x07FF_FFFE_87FF_FFFF
        return c < 0x80 && ((c < 0x40 ? low : high) >> UInt64(c & 0x3F)) & 1 == 1
    }

    /// True when `org` is an org name an entry may carry (format-spec.md §4).
    public static func isValidOrgName(_ org: String) -> Bool {
        (1...64).contains(org.utf8.count) && org.utf8.allSatisfy(isIdentifierByte)
    }

    /// Validates `json` (one entry as a writer sent it) and returns it sequenced-ready. With
    /// `keys`, personal fields are committed (§5.4) under the subjects' keys it gives.
    public static func prepare(
        json: [UInt8], receivedAt: Int64, writer: Writer, keys: SubjectKeys? = nil
    ) throws(EntryError) -> PreparedEntry {
        guard json.count <= ChainFormat.maxInputSize else {
            throw EntryError("", "entry is \(json.count) bytes; the limit is \(ChainFormat.maxInputSize)")
        }
        if let fast = json.withUnsafeBufferPointer({
            fastPrepare($0, receivedAt: receivedAt, writer: writer, keys: keys)
        }) {
            return fast
        }
        return try generalPrepare(json: json, receivedAt: receivedAt, writer: writer, keys: keys)
    }

    /// The general path: parse to a value tree, validate with precise errors, canonicalise.
    static func generalPrepare(
        json: [UInt8], receivedAt: Int64, writer: Writer, keys: SubjectKeys? = nil
    ) throws(EntryError) -> PreparedEntry {
        let v: JSONValue
        do { v = try JSONParser.parse(json, maxDepth: 4) } catch { throw EntryError("", error.description) }
        return try prepare(value: v, receivedAt: receivedAt, writer: writer, keys: keys)
    }

    /// Validates an already parsed entry.
    public static func prepare(
        value v: JSONValue, receivedAt: Int64, writer: Writer, keys: SubjectKeys? = nil
    ) throws(EntryError) -> PreparedEntry {
        guard case .object(let members) = v else { throw EntryError("", "an entry must be a JSON object") }
        for m in members where !EntrySchema.inputMembers.contains(m.key) {
            if EntrySchema.serverMembers.contains(m.key) {
                throw EntryError(m.key, "is assigned by the server; do not send it")
            }
            throw EntryError(
                m.key,
                "is not a field of an audit entry (allowed: \(EntrySchema.inputMembers.sorted().joined(separator: ", ")))"
            )
        }
        func str(
            _ key: String, _ path: String, in obj: JSONValue, required: Bool = true, max: Int,
            pattern: ((UInt8) -> Bool)? = nil
        ) throws(EntryError) -> String? {
            guard let x = obj[key] else {
                if required { throw EntryError(path, "is required") }
                return nil
            }
            guard case .string(let s) = x else { throw EntryError(path, "must be a string") }
            guard !s.isEmpty else { throw EntryError(path, "must not be empty") }
            guard s.utf8.count <= max else { throw EntryError(path, "is \(s.utf8.count) bytes; the limit is \(max)") }
            if let pattern, !s.utf8.allSatisfy(pattern) {
                throw EntryError(path, "has a character outside [A-Za-z0-9_.:@/-]")
            }
            // Byte-level check is exact: UTF-8 continuation and lead bytes are all >= 0x80.
            if s.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) {
                throw EntryError(path, "must not contain control characters")
            }
            return s
        }
        let ident = Entry.isIdentifierByte
        /// Member `t` of `obj` by the schema's row: length, alphabet, values.
        func field(_ t: EntrySchema.Text, in obj: JSONValue, _ parent: String = "") throws(EntryError) -> String? {
            let path = parent.isEmpty ? t.name : parent + "." + t.name
            var pattern: ((UInt8) -> Bool)?
            if t.identifier { pattern = { Entry.isIdentifierByte($0) } }
            guard let s = try str(t.name, path, in: obj, required: !t.optional, max: t.maxBytes, pattern: pattern)
            else { return nil }
            if let values = t.values, !values.contains(s) {
                throw EntryError(path, "'\(s)' must be one of \(values.joined(separator: ", "))")
            }
            return s
        }
        func required(_ t: EntrySchema.Text, in obj: JSONValue, _ parent: String = "") throws(EntryError) -> String {
            guard let s = try field(t, in: obj, parent) else {
                throw EntryError(parent.isEmpty ? t.name : parent + "." + t.name, "is required")
            }
            return s
        }
        /// Object member `o` by the schema: only its members, each by its row.
        func object(_ o: EntrySchema.Object, required: Bool) throws(EntryError) -> [String: String]? {
            guard let x = v[o.name] else {
                if required { throw EntryError(o.name, "is required") }
                return nil
            }
            guard case .object(let m) = x else { throw EntryError(o.name, "must be an object") }
            for member in m where o.member(member.key) == nil {
                throw EntryError(
                    "\(o.name).\(member.key)", "is not allowed here (allowed: \(o.names.joined(separator: ", ")))")
            }
            var out: [String: String] = [:]
            for t in o.members { out[t.name] = try field(t, in: x, o.name) }
            return out
        }

        let org = try required(EntrySchema.org, in: v)
        let categoryText = try required(EntrySchema.category, in: v)
        guard let category = Category(rawValue: categoryText) else {
            throw EntryError("category", "'\(categoryText)' is not a category")
        }
        let action = try required(EntrySchema.action, in: v)
        let outcomeText = try required(EntrySchema.outcome, in: v)
        guard let outcome = Outcome(rawValue: outcomeText) else {
            throw EntryError("outcome", "'\(outcomeText)' is not an outcome")
        }

        let actor = try object(EntrySchema.actor, required: true) ?? [:]
        let actorType = actor["type"] ?? ""
        let actorId = actor["id"] ?? ""
        let onBehalf = try object(EntrySchema.onBehalfOf, required: false)
        if actorType == "agent" && onBehalf == nil {
            throw EntryError(
                "on_behalf_of",
                "is required when the actor is an agent: name the human, service or policy whose authority it acted on")
        }
        _ = try object(EntrySchema.target, required: true)
        let source = try object(EntrySchema.source, required: true) ?? [:]
        if let ip = source["ip"], !IPAddress.isValid(ip.utf8) {
            throw EntryError("source.ip", "'\(ip)' is not an IPv4 or IPv6 address")
        }

        let occurred = try required(EntrySchema.occurredAt, in: v)
        guard Timestamp.parse(occurred) != nil else {
            throw EntryError("occurred_at", "'\(occurred)' is not an RFC 3339 UTC time like 2025-03-01T12:00:00.000Z")
        }
        let idem = try field(EntrySchema.idempotencyKey, in: v)

        var meta: [JSONMember] = []
        if let m = v["metadata"] {
            guard case .object(let mm) = m else { throw EntryError("metadata", "must be an object") }
            guard mm.count <= EntrySchema.maxMetadataKeys else {
                throw EntryError("metadata", "has \(mm.count) members; the limit is \(EntrySchema.maxMetadataKeys)")
            }
            for member in mm {
                let k = member.key
                let x = member.value
                let path = "metadata.\(k)"
                guard !k.isEmpty, k.utf8.count <= EntrySchema.maxMetadataKey, k.utf8.allSatisfy(ident) else {
                    throw EntryError(
                        path, "metadata keys are 1–\(EntrySchema.maxMetadataKey) characters of [A-Za-z0-9_.:@/-]")
                }
                if let why = forbiddenReason(k) { throw EntryError(path, why) }
                try checkMetadata(x, path, depth: 0)
            }
            meta = mm
        }

        let (declared, subjects) = try personalDeclarations(v, metadata: meta)
        var out = members.filter { !["metadata", "personal", "subjects"].contains($0.key) }
        out.append(JSONMember("metadata", .object(meta)))
        var rows: [SealedRow] = []
        var indexedActor = actorType + ":" + actorId
        if let keys {
            let actorTag: SubjectTag?
            (actorTag, rows) = try Personal.protect(
                &out, org: org, declared: declared, subjects: subjects, keys: keys)
            if let actorTag { indexedActor = Personal.indexActor(tag: actorTag) }
        }
        out.append(JSONMember("received_at", .string(Timestamp.format(receivedAt))))
        out.append(JSONMember("writer", writer.json))
        let content = CanonicalJSON.encode(.object(out))
        guard content.count <= ChainFormat.maxEntrySize else {
            throw EntryError(
                "",
                "canonical entry is \(content.count) bytes; the limit is \(ChainFormat.maxEntrySize) (shrink metadata)")
        }
        return PreparedEntry(
            org: org, content: content, contentHash: SHA256.hash(content), idempotencyKey: idem,
            fields: IndexFields(
                time: receivedAt, category: category, outcome: outcome, action: action, actor: indexedActor),
            sealedRows: rows)
    }

    /// Re-reads stored canonical bytes (already validated when written).
    public static func decodeStored(_ content: [UInt8]) throws(JSONError) -> JSONValue {
        try JSONParser.parse(content, maxDepth: 4)
    }

    /// The index fields of stored canonical bytes (used to rebuild the index on recovery).
    public static func indexFields(ofStored content: [UInt8]) -> (org: String, fields: IndexFields)? {
        if let fast = scanIndexFields(content) { return fast }
        return parsedIndexFields(ofStored: content)
    }

    /// `indexFields(ofStored:)` over bytes in place (a stored record's content, not copied out).
    public static func indexFields(ofStored content: UnsafeBufferPointer<UInt8>) -> (org: String, fields: IndexFields)?
    {
        if let fast = scanIndexFields(content) { return fast }
        return parsedIndexFields(ofStored: Array(content))
    }

    /// `indexFields(ofStored:)`, and `Personal.mayHoldCommitments` of the same bytes, in one
    /// pass over them where the scanner can (the verifier asks both of every entry).
    /// With `interner`, repeated actions and actors are the same Strings (`StringInterner`).
    public static func storedFields(
        ofStored content: UnsafeBufferPointer<UInt8>, interner: StringInterner? = nil
    ) -> (org: String, fields: IndexFields, mayHoldCommitments: Bool)? {
        if let fast = scanStoredFields(content, interner: interner) { return fast }
        guard let (org, fields) = parsedIndexFields(ofStored: Array(content)) else { return nil }
        return (org, fields, Personal.mayHoldCommitments(content))
    }

    /// `indexFields(ofStored:)` by the full parser: the reference the scanner must agree with.
    static func parsedIndexFields(ofStored content: [UInt8]) -> (org: String, fields: IndexFields)? {
        guard let v = try? decodeStored(content), let org = v["org"]?.stringValue,
            let cat = v["category"]?.stringValue.flatMap(Category.init(rawValue:)),
            let out = v["outcome"]?.stringValue.flatMap(Outcome.init(rawValue:)),
            let action = v["action"]?.stringValue,
            let at = v["actor"]?["type"]?.stringValue,
            let aid = v["actor"]?["id"].flatMap({
                $0.stringValue ?? Personal.commitment(of: $0).map { Personal.indexID(tag: $0.s) }
            }),
            let t = v["received_at"]?.stringValue.flatMap(Timestamp.parse)
        else { return nil }
        return (org, IndexFields(time: t, category: cat, outcome: out, action: action, actor: at + ":" + aid))
    }
}
