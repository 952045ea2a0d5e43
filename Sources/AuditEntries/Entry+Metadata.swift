import AuditBase

/// The rules of an entry's metadata (design §2, format-spec.md §5.1): keys that may never be
/// stored, the values it may hold, and the writer's declarations of personal keys (§5.4.1).
extension Entry {
    /// Metadata keys whose values must never be stored (design §2).
    static let forbidden: KeyValuePairs<String, String> = [
        "query":
            "the text of a search query must never be stored; record metadata about it instead (e.g. result_count)",
        "query_text":
            "the text of a search query must never be stored; record metadata about it instead (e.g. result_count)",
        "search_query":
            "the text of a search query must never be stored; record metadata about it instead (e.g. result_count)",
        "search_text":
            "the text of a search query must never be stored; record metadata about it instead (e.g. result_count)",
        "q": "the text of a search query must never be stored; record metadata about it instead (e.g. result_count)",
        "secret": "a secret's value must never be stored; record its id instead",
        "secret_value": "a secret's value must never be stored; record its id instead",
        "password": "a password must never be stored",
        "passphrase": "a passphrase must never be stored",
        "private_key": "a private key must never be stored; record its fingerprint instead",
        "credential_value": "a credential's value must never be stored; record its id instead",
        "token_value": "a token's value must never be stored; record its id instead",
        "api_key_value": "an API key's value must never be stored; record its id instead",
    ]

    /// The writer's `personal` (metadata keys to protect) and `subjects` (whose they are).
    static func personalDeclarations(
        _ v: JSONValue, metadata: [JSONMember]
    ) throws(EntryError) -> ([String], [String: String]) {
        var declared: [String] = []
        if let p = v["personal"] {
            guard case .array(let a) = p, a.count <= Personal.maxDeclared else {
                throw EntryError(
                    "personal", "must be an array of at most \(Personal.maxDeclared) metadata keys, e.g. [\"email\"]")
            }
            for (i, x) in a.enumerated() {
                guard let k = x.stringValue, let m = metadata.first(where: { $0.key == k }) else {
                    throw EntryError("personal[\(i)]", "must name a metadata key of this entry")
                }
                guard case .string = m.value else {
                    throw EntryError("metadata.\(k)", "is declared personal, so it must be a string")
                }
                if !declared.contains(k) { declared.append(k) }
            }
        }
        var subjects: [String: String] = [:]
        if let s = v["subjects"] {
            guard case .object(let m) = s else {
                throw EntryError("subjects", "must be an object: {\"<metadata key>\": \"<person id>\"}")
            }
            for x in m {
                guard declared.contains(x.key) else {
                    throw EntryError("subjects.\(x.key)", "names a subject for a key not listed in personal")
                }
                guard let id = x.value.stringValue, (1...128).contains(id.utf8.count),
                    !id.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F })
                else {
                    throw EntryError("subjects.\(x.key)", "must be a person's id: 1-128 bytes, no control characters")
                }
                subjects[x.key] = id
            }
        }
        return (declared, subjects)
    }

    /// Why metadata key `k` may not be stored, or nil.
    static func forbiddenReason(_ k: String) -> String? {
        var k = k
        return k.withUTF8 { forbiddenReason(utf8: $0) }
    }

    /// `forbiddenReason` of a key's bytes, without making a string of them (the fast path
    /// asks it of every metadata key). Keys are ASCII: lower-casing bytes is exact.
    static func forbiddenReason(utf8 k: UnsafeBufferPointer<UInt8>) -> String? {
        for (name, why) in forbidden where name.utf8.count == k.count {
            var same = true
            for (c, x) in zip(name.utf8, k) where c != (x >= 0x41 && x <= 0x5A ? x + 32 : x) {
                same = false
                break
            }
            if same { return why }
        }
        return nil
    }

    static func checkMetadata(_ x: JSONValue, _ path: String, depth: Int) throws(EntryError) {
        switch x {
        case .string(let s):
            guard s.utf8.count <= EntrySchema.maxMetadataString else {
                throw EntryError(
                    path, "is \(s.utf8.count) bytes; metadata strings are limited to \(EntrySchema.maxMetadataString)")
            }
            if s.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) {
                throw EntryError(path, "must not contain control characters")
            }
        case .int, .bool, .null: break
        case .array(let a):
            guard depth == 0, a.count <= EntrySchema.maxMetadataArray else {
                throw EntryError(
                    path, "metadata arrays hold at most \(EntrySchema.maxMetadataArray) scalars and do not nest")
            }
            for (i, e) in a.enumerated() {
                if case .array = e { throw EntryError("\(path)[\(i)]", "metadata arrays do not nest") }
                if case .object = e { throw EntryError("\(path)[\(i)]", "metadata arrays hold scalars only") }
                try checkMetadata(e, "\(path)[\(i)]", depth: 1)
            }
        case .object:
            throw EntryError(
                path,
                "metadata values are strings, integers, booleans, null or arrays of those; flatten nested objects into dotted keys"
            )
        }
    }
}
