import AuditBase
import Foundation

/// A C2SP tlog-checkpoint body (format-spec.md §8.1):
///
///     origin "\n" decimal(size) "\n" base64(root) "\n"
public struct Checkpoint: Sendable, Equatable {
    /// The log's origin line.
    public var origin: String
    /// Number of leaves.
    public var size: UInt64
    /// RFC 9162 root hash at `size`.
    public var root: Hash

    /// A checkpoint.
    public init(origin: String, size: UInt64, root: Hash) {
        self.origin = origin
        self.size = size
        self.root = root
    }

    /// The note text that gets signed.
    public var text: String { "\(origin)\n\(size)\n\(Data(root.bytes).base64EncodedString())\n" }

    /// Parses a checkpoint body strictly (C2SP tlog-checkpoint): at least three lines, every
    /// one non-empty and ending in a newline; the size in decimal without leading zeroes; the
    /// root in canonical base64 of 32 bytes. Extension lines after the root are allowed (and
    /// signed with the rest) but carry nothing this log reads.
    public init(text: String) throws(Note.Failure) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        guard lines.count >= 3, text.hasSuffix("\n") else {
            throw Note.Failure(description: "checkpoint needs origin, size and root lines, each ending in a newline")
        }
        guard !lines.contains(where: \.isEmpty) else {
            throw Note.Failure(
                description:
                    "checkpoint has an empty line (its origin, size, root and extension lines must all be non-empty)")
        }
        guard let size = UInt64(lines[1]), String(size) == lines[1] else {
            throw Note.Failure(
                description: "checkpoint size '\(lines[1].prefix(40))' is not a decimal number without leading zeroes")
        }
        guard let raw = Note.base64(lines[2]), let root = Hash(bytes: raw) else {
            throw Note.Failure(description: "checkpoint root is not canonical base64 of 32 bytes")
        }
        self.init(origin: String(lines[0]), size: size, root: root)
    }
}

/// A checkpoint with its signed note.
public struct SignedCheckpoint: Sendable, Equatable {
    /// The parsed body.
    public var checkpoint: Checkpoint
    /// The whole signed note, exactly as stored.
    public var note: String

    /// Checks `note`'s signature with `verifier` and parses it.
    public init(note: String, verifier: NoteVerifier) throws(Note.Failure) {
        let text = try verifier.open(note)
        checkpoint = try Checkpoint(text: text)
        guard checkpoint.origin == verifier.name else {
            throw Note.Failure(
                description: "checkpoint origin '\(checkpoint.origin)' is not the key name '\(verifier.name)'")
        }
        self.note = note
    }

    /// Checks `note` against the log's keys: it must carry a valid signature by a key in
    /// force at its size (format-spec.md §8.8), and parses it.
    public init(note: String, verifier keys: LogKeys) throws(Note.Failure) {
        guard let sep = note.range(of: "\n\n", options: .backwards) else {
            throw Note.Failure(description: "note has no blank line before its signatures")
        }
        // The signed text is this same prefix: parsed once, then its signature checked.
        let body = try Checkpoint(text: String(note[..<note.index(after: sep.lowerBound)]))
        _ = try keys.openCheckpoint(note, size: body.size)
        checkpoint = body
        guard checkpoint.origin == keys.name else {
            throw Note.Failure(
                description: "checkpoint origin '\(checkpoint.origin)' is not the key name '\(keys.name)'")
        }
        self.note = note
    }

    package init(checkpoint: Checkpoint, note: String) {
        self.checkpoint = checkpoint
        self.note = note
    }
}
