import AuditBase
import Foundation

/// Signed notes (C2SP signed-note; Go's golang.org/x/mod/sumdb/note) with Ed25519 keys
/// (format-spec.md §8).
///
///     verifier key := name "+" hex8(keyhash) "+" base64(0x01 || pub32)
///     signer key   := "PRIVATE+KEY+" name "+" hex8(keyhash) "+" base64(0x01 || seed32)
///     keyhash      := first 4 bytes, big-endian, of SHA-256(name || "\n" || 0x01 || pub32)
///     note         := text "\n" ("— " name " " base64(keyhash4 || sig64) "\n")+
public enum Note {
    /// A malformed key or note.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// In words.
        public var description: String
    }

    /// The 4-byte key hash of a name and public key.
    public static func keyHash(name: String, publicKey: [UInt8]) -> UInt32 {
        let h = SHA256.hash(Array(name.utf8) + [0x0A, ChainFormat.noteAlgEd25519] + publicKey).bytes
        return UInt32(h[0]) << 24 | UInt32(h[1]) << 16 | UInt32(h[2]) << 8 | UInt32(h[3])
    }

    static func hex8(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 8 - s.count) + s
    }

    /// Decodes standard base64 (RFC 4648 §4) only in its one canonical form: padded, no
    /// whitespace, unused bits zero. C2SP specs use this encoding; accepting another spelling of
    /// the same bytes would let two different texts carry one signature.
    public static func base64(_ text: some StringProtocol) -> [UInt8]? {
        guard let d = Data(base64Encoded: String(text)), d.base64EncodedString() == text else { return nil }
        return Array(d)
    }

    /// Checks the shape of a signed note without any key: text, a blank line, then one or
    /// more signature lines `— name base64` (canonical base64 of at least 4 bytes), ending
    /// in a newline. A note failing this is malformed; one passing it may still carry no
    /// signature by a given key.
    public static func checkShape(_ note: String) throws(Note.Failure) {
        guard note.hasSuffix("\n"), let sep = note.range(of: "\n\n", options: .backwards) else {
            throw Note.Failure(
                description: "note has no blank line before its signatures, or does not end in a newline")
        }
        let lines = note[sep.upperBound...].dropLast().split(separator: "\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { throw Note.Failure(description: "note has no signature lines") }
        for line in lines {
            guard line.hasPrefix("— ") else {
                throw Note.Failure(
                    description: "signature line does not start with an em dash and a space: \(line.prefix(80))")
            }
            let rest = line.dropFirst(2).split(separator: " ", omittingEmptySubsequences: false)
            guard rest.count == 2, validName(String(rest[0])), let raw = base64(rest[1]), raw.count >= 4 else {
                throw Note.Failure(description: "malformed signature line (want \"— name base64\"): \(line.prefix(80))")
            }
        }
    }

    static func validName(_ name: String) -> Bool {
        !name.isEmpty && !name.contains("+") && !name.unicodeScalars.contains { $0.value <= 0x20 || $0 == "\u{7f}" }
    }

    static func splitKey(_ key: String, fields: Int) throws(Failure) -> [Substring] {
        let parts = key.split(separator: "+", maxSplits: fields - 1, omittingEmptySubsequences: false)
        guard parts.count == fields else {
            throw Failure(description: "key must have \(fields) '+'-separated fields, found \(parts.count)")
        }
        return parts
    }
}

/// The public half of a note key: checks signatures.
public struct NoteVerifier: Sendable, Equatable {
    /// The key name (for checkpoints, the log's origin).
    public let name: String
    /// The key hash.
    public let hash: UInt32
    /// The Ed25519 public key.
    public let publicKey: [UInt8]

    /// Parses `name+hash+base64key`.
    public init(_ text: String) throws(Note.Failure) {
        let p = try Note.splitKey(text.trimmingCharacters(in: .whitespacesAndNewlines), fields: 3)
        name = String(p[0])
        guard Note.validName(name) else { throw Note.Failure(description: "verifier key has an invalid name") }
        guard let h = UInt32(p[1], radix: 16), p[1].count == 8 else {
            throw Note.Failure(description: "verifier key hash '\(p[1])' is not 8 hex digits")
        }
        guard let raw = Data(base64Encoded: String(p[2])), raw.count == 33, raw.first == ChainFormat.noteAlgEd25519
        else {
            throw Note.Failure(description: "verifier key is not an Ed25519 key (base64 of 0x01 and 32 bytes)")
        }
        publicKey = Array(raw.dropFirst())
        hash = h
        guard Note.keyHash(name: name, publicKey: publicKey) == h else {
            throw Note.Failure(description: "verifier key hash \(p[1]) does not match its name and key")
        }
    }

    init(name: String, publicKey: [UInt8]) {
        self.name = name
        self.publicKey = publicKey
        hash = Note.keyHash(name: name, publicKey: publicKey)
    }

    /// `name+hash+base64(0x01 || pub)`.
    public var text: String {
        name + "+" + Note.hex8(hash) + "+" + Data([ChainFormat.noteAlgEd25519] + publicKey).base64EncodedString()
    }

    /// Checks `note` and returns its text if it carries a valid signature by this key.
    public func open(_ note: String) throws(Note.Failure) -> String {
        let bytes = Array(note.utf8)
        guard let sep = note.range(of: "\n\n", options: .backwards) else {
            throw Note.Failure(description: "note has no blank line before its signatures")
        }
        let text = String(note[..<note.index(after: sep.lowerBound)])
        let sigBlock = note[sep.upperBound...]
        guard bytes.last == 0x0A else { throw Note.Failure(description: "note does not end in a newline") }
        var found = false
        for line in sigBlock.split(separator: "\n") {
            guard line.hasPrefix("— ") else {
                throw Note.Failure(description: "signature line does not start with an em dash: \(line)")
            }
            let rest = line.dropFirst(2).split(separator: " ")
            guard rest.count == 2 else { throw Note.Failure(description: "malformed signature line: \(line)") }
            guard String(rest[0]) == name else { continue }
            guard let raw = Note.base64(rest[1]), raw.count == 4 + 64 else {
                throw Note.Failure(description: "signature by \(name) is not canonical base64 of 68 bytes")
            }
            let r = Array(raw)
            let h = UInt32(r[0]) << 24 | UInt32(r[1]) << 16 | UInt32(r[2]) << 8 | UInt32(r[3])
            guard h == hash else { continue }
            guard Ed25519.verify(Array(r[4...]), message: Array(text.utf8), publicKey: publicKey) else {
                throw Note.Failure(
                    description:
                        "signature by \(name)+\(Note.hex8(hash)) does not verify: the note was altered or signed by another key"
                )
            }
            found = true
        }
        guard found else { throw Note.Failure(description: "note carries no signature by \(name)+\(Note.hex8(hash))") }
        return text
    }
}

/// The private half of a note key.
public struct NoteSigner: Sendable {
    /// The key name.
    public let name: String
    /// The Ed25519 seed.
    let seed: [UInt8]
    /// The matching verifier.
    public let verifier: NoteVerifier

    /// Parses `PRIVATE+KEY+name+hash+base64(0x01 || seed)`.
    public init(_ text: String) throws(Note.Failure) {
        let p = try Note.splitKey(text.trimmingCharacters(in: .whitespacesAndNewlines), fields: 5)
        guard p[0] == "PRIVATE", p[1] == "KEY" else {
            throw Note.Failure(description: "signer key does not start with PRIVATE+KEY+")
        }
        guard let raw = Data(base64Encoded: String(p[4])), raw.count == 33, raw.first == ChainFormat.noteAlgEd25519
        else {
            throw Note.Failure(description: "signer key is not an Ed25519 key")
        }
        let seed = Array(raw.dropFirst())
        let pub: [UInt8]
        do { pub = try Ed25519.publicKey(seed: seed) } catch { throw Note.Failure(description: error.description) }
        let v = NoteVerifier(name: String(p[2]), publicKey: pub)
        guard Note.validName(v.name), Note.hex8(v.hash) == p[3] else {
            throw Note.Failure(description: "signer key hash does not match its name and key")
        }
        self.name = v.name
        self.seed = seed
        self.verifier = v
    }

    /// The key named `name` with Ed25519 seed `seed` (32 bytes): for test vectors.
    public init(name: String, seed: [UInt8]) throws(Note.Failure) {
        guard seed.count == 32 else { throw Note.Failure(description: "an Ed25519 seed is 32 bytes") }
        try self.init(
            "PRIVATE+KEY+\(name)+00000000+" + Data([ChainFormat.noteAlgEd25519] + seed).base64EncodedString(),
            fixHash: true)
    }

    /// A new random key named `name`.
    public static func generate(name: String) throws(Note.Failure) -> NoteSigner {
        guard Note.validName(name) else {
            throw Note.Failure(description: "key name '\(name)' must be non-empty with no spaces or '+'")
        }
        let seed: [UInt8]
        do { seed = try Ed25519.randomSeed() } catch { throw Note.Failure(description: error.description) }
        return try NoteSigner(
            "PRIVATE+KEY+\(name)+00000000+" + Data([ChainFormat.noteAlgEd25519] + seed).base64EncodedString(),
            fixHash: true)
    }

    private init(_ text: String, fixHash: Bool) throws(Note.Failure) {
        let p = try Note.splitKey(text, fields: 5)
        guard let raw = Data(base64Encoded: String(p[4])) else { throw Note.Failure(description: "bad key") }
        let seed = Array(raw.dropFirst())
        let pub: [UInt8]
        do { pub = try Ed25519.publicKey(seed: seed) } catch { throw Note.Failure(description: error.description) }
        self.name = String(p[2])
        self.seed = seed
        self.verifier = NoteVerifier(name: name, publicKey: pub)
    }

    /// `PRIVATE+KEY+name+hash+base64(0x01 || seed)`.
    public var text: String {
        "PRIVATE+KEY+" + name + "+" + Note.hex8(verifier.hash) + "+"
            + Data([ChainFormat.noteAlgEd25519] + seed).base64EncodedString()
    }

    /// Signs `text` (which must end in a newline) and returns the note.
    public func sign(_ text: String) throws(Note.Failure) -> String {
        guard text.hasSuffix("\n") else { throw Note.Failure(description: "note text must end in a newline") }
        let sig: [UInt8]
        do { sig = try Ed25519.sign(Array(text.utf8), seed: seed) } catch {
            throw Note.Failure(description: error.description)
        }
        let h = verifier.hash
        let prefix: [UInt8] = [UInt8(h >> 24), UInt8((h >> 16) & 0xff), UInt8((h >> 8) & 0xff), UInt8(h & 0xff)]
        return text + "\n— " + name + " " + Data(prefix + sig).base64EncodedString() + "\n"
    }
}
