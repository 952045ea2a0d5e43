import AuditBase
import Foundation

/// C2SP tlog-cosignature, `cosignature/v1` with Ed25519 (format-spec.md §8.4): a witness's
/// timestamped statement that a checkpoint is the largest consistent tree it has seen of the
/// log. It is a signed-note signature line on the checkpoint:
///
///     line     := "— " name " " base64(keyID[4] || timestamp:u64be || ed25519sig[64]) "\n"
///     keyID    := SHA-256(name || "\n" || 0x04 || pub32)[:4]
///     message  := "cosignature/v1\n" "time " decimal(timestamp) "\n" checkpoint-body
///     vkey     := name "+" hex8(keyID) "+" base64(0x04 || pub32)
public enum Cosignature {
    /// The signature type byte of Ed25519 cosignatures.
    public static let algorithm: UInt8 = 0x04

    /// The 4-byte key ID of cosigner `name` with Ed25519 public key `publicKey`.
    public static func keyID(name: String, publicKey: [UInt8]) -> UInt32 {
        let h = SHA256.hash(Array(name.utf8) + [0x0A, algorithm] + publicKey).bytes
        return UInt32(h[0]) << 24 | UInt32(h[1]) << 16 | UInt32(h[2]) << 8 | UInt32(h[3])
    }

    /// The message a v1 cosignature at `time` (POSIX seconds) signs for checkpoint `body`
    /// (the note text, ending in a newline, without signature lines).
    public static func message(body: String, time: UInt64) -> String {
        "cosignature/v1\ntime \(time)\n" + body
    }

    /// A note's text and its signature lines (each without its newline).
    public static func split(note: String) throws(Note.Failure) -> (body: String, lines: [Substring]) {
        guard note.hasSuffix("\n"), let sep = note.range(of: "\n\n", options: .backwards) else {
            throw Note.Failure(
                description: "note has no blank line before its signatures, or does not end in a newline")
        }
        let body = String(note[..<note.index(after: sep.lowerBound)])
        return (body, note[sep.upperBound...].split(separator: "\n"))
    }
}

/// A witness's cosigning key: an Ed25519 key under a name (a schema-less URL by convention).
public struct Cosigner: Sendable {
    /// The cosigner's name.
    public let name: String
    let seed: [UInt8]
    /// The matching verifier.
    public let verifier: CosignatureVerifier

    /// The cosigner with the name and Ed25519 key of `key` (a note key file's key).
    public init(key: NoteSigner) {
        name = key.name
        seed = key.seed
        verifier = CosignatureVerifier(name: key.name, publicKey: key.verifier.publicKey)
    }

    /// The signature line (ending in a newline) cosigning checkpoint `body` at `time`.
    public func cosign(body: String, time: UInt64) throws(Note.Failure) -> String {
        let sig: [UInt8]
        do { sig = try Ed25519.sign(Array(Cosignature.message(body: body, time: time).utf8), seed: seed) } catch {
            throw Note.Failure(description: error.description)
        }
        let id = verifier.keyID
        var raw = ByteWriter(capacity: 76)
        raw.write([UInt8(id >> 24), UInt8((id >> 16) & 0xff), UInt8((id >> 8) & 0xff), UInt8(id & 0xff)])
        raw.writeBE(time)
        raw.write(sig)
        return "— " + name + " " + Data(raw.bytes).base64EncodedString() + "\n"
    }
}

/// Checks one cosigner's cosignatures.
public struct CosignatureVerifier: Sendable, Equatable, Hashable {
    /// The cosigner's name.
    public let name: String
    /// Its Ed25519 public key.
    public let publicKey: [UInt8]
    /// Its key ID.
    public let keyID: UInt32

    init(name: String, publicKey: [UInt8]) {
        self.name = name
        self.publicKey = publicKey
        keyID = Cosignature.keyID(name: name, publicKey: publicKey)
    }

    /// Parses a cosigner's verifier key, `name+hex8(keyID)+base64(0x04 || pub32)`.
    public init(_ text: String) throws(Note.Failure) {
        let p = try Note.splitKey(text.trimmingCharacters(in: .whitespacesAndNewlines), fields: 3)
        let name = String(p[0])
        guard Note.validName(name) else { throw Note.Failure(description: "witness key has an invalid name") }
        guard let raw = Data(base64Encoded: String(p[2])), raw.count == 33, raw.first == Cosignature.algorithm else {
            throw Note.Failure(
                description: "witness key is not an Ed25519 cosignature key (base64 of 0x04 and 32 bytes)")
        }
        self.init(name: name, publicKey: Array(raw.dropFirst()))
        guard p[1].count == 8, UInt32(p[1], radix: 16) == keyID else {
            throw Note.Failure(description: "witness key ID \(p[1]) does not match its name and key")
        }
    }

    /// Checks that no witness is listed twice (the same key, or the same name), so that a
    /// quorum of K always means K distinct witnesses: one key listed twice would count twice.
    public static func distinct(_ verifiers: [CosignatureVerifier]) throws(Note.Failure) {
        var keys: Set<[UInt8]> = []
        var names: Set<String> = []
        for v in verifiers {
            guard keys.insert(v.publicKey).inserted, names.insert(v.name).inserted else {
                throw Note.Failure(
                    description:
                        "witness \(v.name) is listed twice (each witness counts once toward a quorum); list each witness key once"
                )
            }
        }
    }

    /// `name+hex8(keyID)+base64(0x04 || pub32)`.
    public var text: String {
        name + "+" + Note.hex8(keyID) + "+" + Data([Cosignature.algorithm] + publicKey).base64EncodedString()
    }

    /// The time of this cosigner's cosignature in signature line `line` (without its
    /// newline) on checkpoint `body`; nil when the line is another key's. Throws when the
    /// line claims this key but does not verify.
    public func verify(line: Substring, body: String) throws(Note.Failure) -> UInt64? {
        guard line.hasPrefix("— ") else { return nil }
        let rest = line.dropFirst(2).split(separator: " ", omittingEmptySubsequences: false)
        guard rest.count == 2, rest[0] == name, let raw = Note.base64(rest[1]), raw.count == 4 + 8 + 64 else {
            return nil
        }
        let id = raw[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard id == keyID else { return nil }
        let time = raw[4..<12].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard time < 1 << 63,
            Ed25519.verify(
                Array(raw[12...]), message: Array(Cosignature.message(body: body, time: time).utf8),
                publicKey: publicKey)
        else {
            throw Note.Failure(
                description:
                    "cosignature by witness \(name)+\(Note.hex8(keyID)) does not verify: the checkpoint was altered or signed by another key"
            )
        }
        return time
    }

    /// How far ahead of the verifier's clock a cosignature may be dated (clock skew).
    public static let futureSkew: UInt64 = 600

    /// The time of this cosigner's valid cosignature in `note` (a checkpoint with its
    /// signature lines), or nil when the note carries none (format-spec.md §8.4). Throws, and
    /// the note is refused, when a line claims this key but does not verify, when this key
    /// signed more than one line, or when its time is more than `futureSkew` seconds after
    /// `now` (seconds since the epoch): a witness never dates a cosignature ahead of the
    /// checkpoint it saw. Every command that counts cosignatures asks here.
    public func cosignature(
        in note: String, now: UInt64 = UInt64(max(0, Date().timeIntervalSince1970))
    ) throws(Note.Failure) -> UInt64? {
        let (body, lines) = try Cosignature.split(note: note)
        var found: UInt64?
        for line in lines {
            guard let t = try verify(line: line, body: body) else { continue }
            guard found == nil else {
                throw Note.Failure(
                    description:
                        "witness \(name)+\(Note.hex8(keyID)) signed this checkpoint twice (two signature lines): one witness gives one cosignature"
                )
            }
            guard t <= now + Self.futureSkew else {
                throw Note.Failure(
                    description:
                        "cosignature by witness \(name)+\(Note.hex8(keyID)) is dated \(t), more than \(Self.futureSkew) s after this machine's clock (\(now)): refused"
                )
            }
            found = t
        }
        return found
    }
}
