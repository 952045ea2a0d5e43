/// One integrity failure, located.
public struct VerificationFailure: Sendable, Equatable, CustomStringConvertible {
    /// The first sequence number affected, if the failure is in an entry.
    public var seq: UInt64?
    /// The file.
    public var path: String
    /// The byte offset in the file, if known.
    public var offset: Int64?
    /// What is wrong.
    public var message: String

    /// A failure.
    public init(seq: UInt64?, path: String, offset: Int64?, message: String) {
        self.seq = seq
        self.path = path
        self.offset = offset
        self.message = message
    }

    /// One line.
    public var description: String {
        (seq.map { "entry \($0): " } ?? "") + message + " [file \(path)" + (offset.map { " at offset \($0)" } ?? "")
            + "]"
    }
}
