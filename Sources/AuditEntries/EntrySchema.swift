/// What a writer may send (format-spec.md §4), written once: `Entry.prepare` (the general
/// validator, which says precisely what is wrong) and `Entry.fastPrepare` (the ingest hot
/// path, which only recognises valid entries) both read these rows, and a test checks them
/// against the spec's table.
public enum EntrySchema {
    /// A string member: its name, its length in bytes, and its alphabet or values.
    public struct Text: Sendable {
        /// The member's name.
        public let name: String
        /// Most bytes it may hold (at least 1).
        public let maxBytes: Int
        /// Whether the member may be left out.
        public let optional: Bool
        /// Only `[A-Za-z0-9_.:@/-]` (`Entry.isIdentifierByte`).
        public let identifier: Bool
        /// The values it may take, when it is an enumeration.
        public let values: [String]?
        /// The name's bytes, and each value's, for the ingest hot path to compare in place.
        let nameUTF8: [UInt8]
        let valuesUTF8: [[UInt8]]?
        /// `"name":`, as the canonical bytes hold it before the member's value.
        let quotedKey: [UInt8]

        init(_ name: String, _ maxBytes: Int, optional: Bool = false, identifier: Bool = false, values: [String]? = nil)
        {
            self.name = name
            self.maxBytes = maxBytes
            self.optional = optional
            self.identifier = identifier
            self.values = values
            nameUTF8 = Array(name.utf8)
            valuesUTF8 = values?.map { Array($0.utf8) }
            quotedKey = [0x22] + Array(name.utf8) + [0x22, 0x3A]
        }
    }

    /// An object member: its name and its members, in canonical (sorted) order.
    public struct Object: Sendable {
        /// The member's name.
        public let name: String
        /// Its members, sorted by name (the canonical order).
        public let members: [Text]
        /// Every member's `"name":` in that order, in one array, and where each starts (with
        /// the end last): a writer copies a key out of it without copying the member, which
        /// would retain and release each string and array the member holds.
        let quotedKeys: [UInt8]
        let keyStarts: [Int]

        init(name: String, members: [Text]) {
            self.name = name
            self.members = members
            var keys: [UInt8] = []
            var starts = [0]
            for m in members {
                keys += m.quotedKey
                starts.append(keys.count)
            }
            quotedKeys = keys
            keyStarts = starts
        }

        /// The member named `name`.
        public func member(_ name: String) -> Text? { members.first { $0.name == name } }
        /// The names, in canonical order.
        public var names: [String] { members.map(\.name) }
    }

    public static let org = Text("org", 64, identifier: true)
    public static let category = Text("category", 32, values: Category.allCases.map(\.rawValue))
    public static let action = Text("action", 128, identifier: true)
    public static let outcome = Text("outcome", 16, values: Outcome.allCases.map(\.rawValue))
    public static let occurredAt = Text("occurred_at", 40)
    public static let idempotencyKey = Text("idempotency_key", 128, optional: true)

    public static let actor = Object(
        name: "actor",
        members: [
            Text("id", 128), Text("name", 256, optional: true),
            Text("type", 16, values: ["human", "agent", "service"]),
        ])
    /// Required when the actor is an agent.
    public static let onBehalfOf = Object(
        name: "on_behalf_of",
        members: [
            Text("approval", 128, optional: true), Text("id", 128),
            Text("type", 16, values: ["human", "agent", "service", "policy"]),
        ])
    public static let target = Object(
        name: "target",
        members: [
            Text("id", 256), Text("name", 256, optional: true), Text("type", 64, identifier: true),
        ])
    public static let source = Object(
        name: "source",
        members: [
            Text("ip", 64, optional: true), Text("service", 128, identifier: true),
            Text("session", 128, optional: true),
            Text("user_agent", 512, optional: true),
        ])

    /// Metadata: at most this many members…
    public static let maxMetadataKeys = 32
    /// …with keys of 1 to this many identifier bytes…
    public static let maxMetadataKey = 64
    /// …and string values of at most this many bytes…
    public static let maxMetadataString = 1024
    /// …or arrays of at most this many scalars.
    public static let maxMetadataArray = 64

    /// The members a writer may send.
    public static let inputMembers: [String] = [
        "org", "category", "action", "actor", "on_behalf_of", "target", "outcome", "source", "occurred_at",
        "idempotency_key", "metadata", "personal", "subjects",
    ]
    /// The members the server assigns, refused from a writer.
    public static let serverMembers: [String] = ["received_at", "writer", "seq", "hash"]
}
