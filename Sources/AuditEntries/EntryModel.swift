import AuditBase
import LogProofs

// The types of the entry model (design §2, format-spec.md §5.1): what `Entry.prepare` takes
// and makes.

/// The ten categories.
public enum Category: String, Sendable, CaseIterable {
    case authentication, access, credentials, agents, billing, infrastructure, monitoring, files
    case orgSettings = "org_settings"
    case privacy

    /// Index code (format-spec.md §7).
    public var code: UInt8 { UInt8(Self.allCases.firstIndex(of: self) ?? 0) }
    /// The category named by `utf8` (no String made: the verifier reads one from every entry).
    public init?(utf8: UnsafeBufferPointer<UInt8>) {
        guard let i = Self.names.firstIndex(where: { $0.elementsEqual(utf8) }) else { return nil }
        self = Self.allCases[i]
    }
    private static let names = allCases.map { Array($0.rawValue.utf8) }
    /// The category with index code `c`.
    public init?(code: UInt8) {
        guard Int(code) < Self.allCases.count else { return nil }
        self = Self.allCases[Int(code)]
    }
}

/// Success, failure or denied.
public enum Outcome: String, Sendable, CaseIterable {
    case success, failure, denied

    /// Index code.
    public var code: UInt8 { UInt8(Self.allCases.firstIndex(of: self) ?? 0) }
    /// The outcome named by `utf8` (no String made).
    public init?(utf8: UnsafeBufferPointer<UInt8>) {
        guard let i = Self.names.firstIndex(where: { $0.elementsEqual(utf8) }) else { return nil }
        self = Self.allCases[i]
    }
    private static let names = allCases.map { Array($0.rawValue.utf8) }
    /// The outcome with index code `c`.
    public init?(code: UInt8) {
        guard Int(code) < Self.allCases.count else { return nil }
        self = Self.allCases[Int(code)]
    }
}

/// A refused entry: which field, and why.
public struct EntryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The field's path, e.g. `actor.type` (empty for the whole entry).
    public var field: String
    /// What is wrong with it and what to send instead.
    public var message: String

    /// A refusal of `field`.
    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    /// `field 'actor.type': …`.
    public var description: String { field.isEmpty ? message : "field '\(field)': \(message)" }
}

/// Who handed the entry to the log (assigned by the server from the socket's peer credentials).
public struct Writer: Sendable, Equatable {
    /// Peer user id.
    public var uid: UInt32
    /// Peer group id.
    public var gid: UInt32
    /// How it arrived: `socket`, `import`, `auditd` (entries the daemon writes itself)…
    public var via: String

    /// Its canonical JSON object, computed once.
    let canonical: [UInt8]

    /// A writer identity.
    public init(uid: UInt32, gid: UInt32, via: String) {
        self.uid = uid
        self.gid = gid
        self.via = via
        canonical = CanonicalJSON.encode(
            .object([
                JSONMember("gid", .int(Int64(gid))), JSONMember("uid", .int(Int64(uid))),
                JSONMember("via", .string(via)),
            ]))
    }

    public static func == (a: Writer, b: Writer) -> Bool { a.uid == b.uid && a.gid == b.gid && a.via == b.via }

    var json: JSONValue {
        .object([
            JSONMember("gid", .int(Int64(gid))), JSONMember("uid", .int(Int64(uid))), JSONMember("via", .string(via)),
        ])
    }
}

/// The fields the org index keeps of each entry, so queries filter before decompressing.
public struct IndexFields: Sendable, Equatable {
    /// Server receive time, ms since the epoch.
    public var time: Int64
    /// Category.
    public var category: Category
    /// Outcome.
    public var outcome: Outcome
    /// Action.
    public var action: String
    /// Actor as `type:id`.
    public var actor: String

    /// The fields of one entry.
    public init(time: Int64, category: Category, outcome: Outcome, action: String, actor: String) {
        self.time = time
        self.category = category
        self.outcome = outcome
        self.action = action
        self.actor = actor
    }
}

/// A validated entry ready to be sequenced: canonical bytes and their hash.
public struct PreparedEntry: Sendable {
    /// The org.
    public let org: String
    /// Canonical bytes (what is stored and hashed).
    public let content: [UInt8]
    /// SHA-256 of `content`.
    public let contentHash: Hash
    /// The writer's idempotency key, if it sent one.
    public let idempotencyKey: String?
    /// What the index keeps.
    public let fields: IndexFields
    /// What the personal store keeps of its committed fields: a row per subject (empty when
    /// nothing is protected).
    public let sealedRows: [SealedRow]

    /// A prepared entry.
    public init(
        org: String, content: [UInt8], contentHash: Hash, idempotencyKey: String?, fields: IndexFields,
        sealedRows: [SealedRow] = []
    ) {
        self.org = org
        self.content = content
        self.contentHash = contentHash
        self.idempotencyKey = idempotencyKey
        self.fields = fields
        self.sealedRows = sealedRows
    }
}
