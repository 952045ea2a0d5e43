import AuditBase
import LogProofs

/// What a time-stamping authority is asked to sign (format-spec.md §8.7): the SHA-256 of a
/// checkpoint's body (`origin`, size and root hash lines, as the log signs them), so that a
/// token says "a tree of this size with this root existed no later than its time", whoever
/// holds it, and `openssl ts -verify -data body.txt` checks it with no tool of ours.
public enum TimeStampImprint {
    /// The bytes hashed: the checkpoint body.
    public static func data(_ cp: Checkpoint) -> [UInt8] { Array(cp.text.utf8) }

    /// `SHA-256(body)`.
    public static func digest(_ cp: Checkpoint) -> [UInt8] { SHA256.hash(data(cp)).bytes }
}

/// An RFC 3161 `TimeStampReq` (DER): version 1, the SHA-256 imprint, a nonce, and `certReq`
/// true (the token then carries the TSA's certificate, so it can be checked on its own).
public enum TimeStampRequest {
    /// Bytes of the nonce.
    public static let nonceSize = 8

    /// The request for `digest` (32 bytes) with `nonce` (8 bytes: its top bit is cleared and
    /// the next set, so that it is a positive INTEGER of exactly 8 bytes in DER).
    public static func der(digest: [UInt8], nonce: [UInt8]) -> [UInt8]? {
        guard digest.count == 32, nonce.count == nonceSize else { return nil }
        // AlgorithmIdentifier { id-sha256 (2.16.840.1.101.3.4.2.1), NULL }
        let sha256: [UInt8] = [
            0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
        ]
        let imprint: [UInt8] = [0x30, UInt8(sha256.count + 34)] + sha256 + [0x04, 0x20] + digest
        let version: [UInt8] = [0x02, 0x01, 0x01]
        let nonceInt: [UInt8] = [0x02, UInt8(nonceSize)] + normalized(nonce)
        let certReq: [UInt8] = [0x01, 0x01, 0xFF]
        let body = version + imprint + nonceInt + certReq
        return [0x30, UInt8(body.count)] + body
    }

    /// A nonce made positive and minimal as an 8-byte DER INTEGER.
    public static func normalized(_ nonce: [UInt8]) -> [UInt8] {
        var n = nonce
        if !n.isEmpty { n[0] = (n[0] & 0x7F) | 0x40 }
        return n
    }
}
