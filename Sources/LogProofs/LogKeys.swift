import AuditBase
import Foundation

/// The log's key handed to another (format-spec.md §8.8): a statement signed by both keys.
///
///     "auditlog key succession/1\n" origin "\n" old "\n" new "\n" handover "\n" grace_end "\n"
///
/// `old` and `new` are verifier keys named by the origin. From tree size `handover` on the new
/// key signs checkpoints; the old one may still sign those up to `grace_end` (so checkpoints
/// in between carry both), and none after. The entry at seq `handover - 1` is the log's own
/// record of the handover (`log.key.rotated`), so every checkpoint from it on commits to it.
public struct KeySuccession: Sendable, Equatable {
    /// The log.
    public let origin: String
    /// The key handed over from.
    public let old: NoteVerifier
    /// The key handed over to.
    public let new: NoteVerifier
    /// The first tree size the new key signs.
    public let handover: UInt64
    /// The last tree size the old key signs (at least `handover`).
    public let graceEnd: UInt64
    /// The statement, signed by both keys.
    public let note: String

    static let tag = "auditlog key succession/1"

    /// The statement's text.
    public static func text(
        origin: String, old: NoteVerifier, new: NoteVerifier, handover: UInt64, graceEnd: UInt64
    )
        -> String
    {
        "\(tag)\n\(origin)\n\(old.text)\n\(new.text)\n\(handover)\n\(graceEnd)\n"
    }

    /// The statement handing `old`'s log to `new` at `handover`, signed by both.
    public static func sign(
        old: NoteSigner, new: NoteSigner, handover: UInt64, grace: UInt64
    ) throws(Note.Failure)
        -> KeySuccession
    {
        guard old.name == new.name else {
            throw Note.Failure(
                description: "the new key is named '\(new.name)', the log's '\(old.name)': make it with that name")
        }
        guard old.verifier != new.verifier else { throw Note.Failure(description: "the new key is the current key") }
        let (end, overflow) = handover.addingReportingOverflow(grace)
        guard !overflow else { throw Note.Failure(description: "grace \(grace) is too large") }
        let text = text(origin: old.name, old: old.verifier, new: new.verifier, handover: handover, graceEnd: end)
        let note = try Note.cosign(try old.sign(text), with: new)
        return try KeySuccession(note: note)
    }

    /// Parses a statement and checks both signatures: the old key's and the new key's.
    public init(note: String) throws(Note.Failure) {
        guard note.utf8.count <= 4096 else { throw Note.Failure(description: "key succession is over 4096 bytes") }
        try Note.checkShape(note)
        guard let sep = note.range(of: "\n\n", options: .backwards) else {
            throw Note.Failure(description: "key succession has no signatures")
        }
        let text = String(note[..<note.index(after: sep.lowerBound)])
        let l = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        guard l.count == 6, l[0] == Self.tag else {
            throw Note.Failure(
                description: "not a key succession (want \(Self.tag), origin, old key, new key, handover, grace end)")
        }
        let old = try NoteVerifier(String(l[2]))
        let new = try NoteVerifier(String(l[3]))
        guard let h = UInt64(l[4]), String(h) == l[4], let g = UInt64(l[5]), String(g) == l[5], g >= h, h > 0 else {
            throw Note.Failure(
                description: "key succession sizes '\(l[4])', '\(l[5])' are not 0 < handover <= grace end")
        }
        guard old.name == l[1], new.name == l[1], old != new else {
            throw Note.Failure(description: "key succession keys must be two different keys named by its origin")
        }
        do {
            _ = try old.open(note)
        } catch {
            throw Note.Failure(description: "key succession is not signed by the key it replaces: \(error.description)")
        }
        do { _ = try new.open(note) } catch {
            throw Note.Failure(description: "key succession is not signed by the new key: \(error.description)")
        }
        origin = String(l[1])
        self.old = old
        self.new = new
        handover = h
        graceEnd = g
        self.note = note
    }
}

/// The keys that sign a log's checkpoints over its life: the key an auditor holds and the
/// successions after it, each signed by the key it replaces (format-spec.md §8.8). A checkpoint
/// of size n must carry a valid signature by a key in force at n.
public struct LogKeys: Sendable, Equatable {
    /// The key trusted to begin with (normally the log's first).
    public let original: NoteVerifier
    /// The successions followed from it, oldest first.
    public private(set) var successions: [KeySuccession] = []

    /// Just `key`.
    public init(_ key: NoteVerifier) { original = key }

    /// `key` and the successions from it: statements before the one that replaces `key` are
    /// skipped (a verifier that trusts a later key needs none of them); each one followed must
    /// be signed by the key it replaces.
    public init(trusting key: NoteVerifier, successions notes: [String]) throws(Note.Failure) {
        original = key
        var reached = false
        for n in notes {
            let s = try KeySuccession(note: n)
            if !reached {
                guard s.old == key else {
                    if s.new == key { reached = true }
                    continue
                }
                reached = true
            }
            try follow(s)
        }
    }

    /// Adds the next succession; it must be signed by (and replace) the key in force now.
    public mutating func follow(_ s: KeySuccession) throws(Note.Failure) {
        guard s.origin == original.name else {
            throw Note.Failure(description: "key succession is for log '\(s.origin)', not '\(original.name)'")
        }
        guard s.old == current else {
            throw Note.Failure(
                description:
                    "key succession replaces \(s.old.text), but the key in force is \(current.text): refused (a succession must be signed by the key it replaces)"
            )
        }
        if let last = successions.last, s.handover <= last.handover {
            throw Note.Failure(
                description: "key succession hands over at \(s.handover), not after the previous one (\(last.handover))"
            )
        }
        successions.append(s)
    }

    /// The key that signs the newest checkpoints.
    public var current: NoteVerifier { successions.last?.new ?? original }
    /// The log's origin (every key's name).
    public var name: String { original.name }
    /// The original key's text.
    public var text: String { original.text }
    /// Every key, oldest first.
    public var keys: [NoteVerifier] { [original] + successions.map(\.new) }
    /// The statements, oldest first.
    public var notes: [String] { successions.map(\.note) }

    /// The keys that may sign a checkpoint of `size` entries, newest first.
    public func inForce(at size: UInt64) -> [NoteVerifier] {
        var out: [NoteVerifier] = []
        for (i, k) in keys.enumerated() {
            let from = i == 0 ? 0 : successions[i - 1].handover
            let to = i < successions.count ? successions[i].graceEnd : .max
            if size >= from && size <= to { out.append(k) }
        }
        return out.reversed()
    }

    /// The text of a checkpoint note of `size` entries that a key in force at `size` signed.
    /// A signature by a key of the chain that does not verify is refused, as is a checkpoint
    /// only a retired key signed.
    public func openCheckpoint(_ note: String, size: UInt64) throws(Note.Failure) -> String {
        let keys = inForce(at: size)
        var firstError: Note.Failure?
        for k in keys {
            do { return try k.open(note) } catch { firstError = firstError ?? error }
        }
        for k in self.keys where !keys.contains(k) && (try? k.open(note)) != nil {
            throw Note.Failure(
                description:
                    "checkpoint of \(size) entries is signed by \(k.text), which is in force only at \(range(of: k)): a retired key's signature is refused"
            )
        }
        throw firstError ?? Note.Failure(description: "no key of the log is in force at size \(size)")
    }

    /// A note other than a checkpoint (an archive manifest, a tombstone, a tail object) with a
    /// valid signature by any key of the chain: what such notes state is bound to checkpoints,
    /// which are held to the key in force.
    public func open(_ note: String) throws(Note.Failure) -> String {
        var firstError: Note.Failure?
        for k in keys.reversed() {
            do { return try k.open(note) } catch { firstError = firstError ?? error }
        }
        throw firstError ?? Note.Failure(description: "no key")
    }

    /// Where `key` is in force, in words.
    func range(of key: NoteVerifier) -> String {
        guard let i = keys.firstIndex(of: key) else { return "not a key of this log" }
        let from = i == 0 ? 0 : successions[i - 1].handover
        return i < successions.count ? "sizes \(from) to \(successions[i].graceEnd)" : "from size \(from)"
    }
}

extension Note {
    /// `note` with one more signature line, by `signer` over the same text.
    public static func cosign(_ note: String, with signer: NoteSigner) throws(Note.Failure) -> String {
        guard let sep = note.range(of: "\n\n", options: .backwards) else {
            throw Note.Failure(description: "note has no blank line before its signatures")
        }
        let text = String(note[..<note.index(after: sep.lowerBound)])
        let signed = Array(try signer.sign(text).utf8)
        // `signed` is text, a newline, then the one signature line.
        return note + String(decoding: signed[(text.utf8.count + 1)...], as: UTF8.self)
    }
}
