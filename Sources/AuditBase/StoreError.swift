/// Everything the segment store can fail with. Each error names the file and, where it
/// applies, the byte offset or sequence number, and says what the operator can do.
public struct StoreError: Error, Sendable, CustomStringConvertible, Equatable {
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
    }

    /// The kind of failure.
    public var code: Code
    /// What happened, in words.
    public var message: String
    /// The file involved, if any.
    public var path: String?
    /// The byte offset in `path`, if known.
    public var offset: Int64?

    /// An error of `code` about `path` at `offset`.
    public init(_ code: Code, _ message: String, path: String? = nil, offset: Int64? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
    }

    /// One line: what, where, and what to do.
    public var description: String {
        var s = "\(code.rawValue): \(message)"
        if let path { s += " [file \(path)" + (offset.map { " at offset \($0)" } ?? "") + "]" }
        switch code {
        case .diskFull: s += "; free space on the data volume, then retry (nothing acknowledged was lost)"
        case .permission: s += "; check the owner and mode of the data directory"
        case .corrupt: s += "; verify the whole directory and restore the damaged file from a copy"
        case .locked: s += "; stop the other process using this directory first"
        default: break
        }
        return s
    }
}
