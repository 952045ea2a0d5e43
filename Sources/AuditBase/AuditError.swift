/// The one error type of every layer: what happened, where (the file and, where it applies,
/// the byte offset), what the operator can do, and the error beneath it, if any. Its `code`
/// says what kind of failure it is, so callers branch on the code and never on the words.
public struct AuditError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The kind of failure.
    public enum Code: String, Sendable {
        /// The disk (or quota) is full.
        case diskFull = "disk full"
        /// The process may not read or write a path.
        case permission = "permission denied"
        /// Bytes on disk do not match their checksum or grammar.
        case corrupt = "corrupt data"
        /// Another process holds the data directory.
        case locked = "directory in use"
        /// A sequence number that is not (or not yet) stored.
        case notFound = "not found"
        /// A caller passed something the store refuses.
        case invalidArgument = "invalid argument"
        /// The entries left this directory (the error says where, and how to get them back).
        case retired = "not here"
        /// Any other operating-system error.
        case io = "I/O error"
        /// An operation that could not be done, said in full by its message (which names what
        /// to do): a key that does not match, a checkpoint that is not consistent, a policy
        /// that forbids it, a peer that answered wrongly.
        case failed = "failed"
    }

    /// The kind of failure.
    public var code: Code
    /// What happened, in words.
    public var message: String
    /// The file involved, if any.
    public var path: String?
    /// The byte offset in `path`, if known.
    public var offset: Int64?
    /// The error beneath this one, if any.
    public var cause: (any Error & Sendable)?

    /// An error of `code` about `path` at `offset`, caused by `cause`.
    public init(
        _ code: Code, _ message: String, path: String? = nil, offset: Int64? = nil, cause: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
        self.cause = cause
    }

    /// An operation that failed, said in full by `message` (code `failed`).
    public init(_ message: String) { self.init(.failed, message) }

    /// One line: what, where, what to do, and what lay beneath.
    public var description: String {
        var s = code == .failed ? message : "\(code.rawValue): \(message)"
        if let path { s += " [file \(path)" + (offset.map { " at offset \($0)" } ?? "") + "]" }
        switch code {
        case .diskFull: s += "; free space on the data volume, then retry (nothing acknowledged was lost)"
        case .permission: s += "; check the owner and mode of the data directory"
        case .corrupt: s += "; verify the whole directory and restore the damaged file from a copy"
        case .locked: s += "; stop the other process using this directory first"
        default: break
        }
        if let cause { s += " (cause: \(cause))" }
        return s
    }

    /// Equal when they say the same thing about the same place (causes compared as text).
    public static func == (a: AuditError, b: AuditError) -> Bool {
        a.code == b.code && a.message == b.message && a.path == b.path && a.offset == b.offset
            && a.cause.map { "\($0)" } == b.cause.map { "\($0)" }
    }
}
