import AuditBase
import Foundation

/// `received_at` (format-spec.md §5.1), its one rule in two steps. An entry is stamped with the
/// server's clock before it is prepared, off the serial path, so that its content hash is
/// computed there too (the daemon reads the clock once for all the frames of one read:
/// `ReceivedAt.now()`). In sequence order it never decreases: entries prepared on different
/// connections can reach the commit path a little out of clock order, so the ledger's
/// sequencer raises an earlier time to the previous entry's (`reordered(after:)`), redoing the
/// canonical bytes and hash of that rare entry.
public enum ReceivedAt {
    /// The server clock now, in ms since the epoch: the stamp of the entries about to be prepared.
    public static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

extension PreparedEntry {
    /// This entry stamped with `previous` (the `received_at` of the entry before it in
    /// sequence order) when its own is earlier; nil when it is not, or when it cannot be
    /// restamped: then the entry stands as it is (and is not copied to say so).
    public func reordered(after previous: Int64) -> PreparedEntry? {
        guard fields.time < previous else { return nil }
        return restamped(previous)
    }

    /// This entry with `received_at` set to `ms` (its canonical bytes and hash redone), or nil
    /// when its bytes hold no top-level `received_at` of the fixed 24-byte form.
    package func restamped(_ ms: Int64) -> PreparedEntry? {
        guard ms >= 0, ms < 253_402_300_800_000, let at = Self.receivedAtOffset(content) else { return nil }
        var bytes = content
        var stamp: [UInt8] = []
        stamp.reserveCapacity(24)
        Timestamp.append(ms, to: &stamp)
        guard stamp.count == 24 else { return nil }
        bytes.replaceSubrange(at..<at + 24, with: stamp)
        var f = fields
        f.time = ms
        return PreparedEntry(
            org: org, content: bytes, contentHash: SHA256.hash(bytes), idempotencyKey: idempotencyKey, fields: f,
            sealedRows: sealedRows)
    }

    /// Where the value of the top-level `received_at` starts. Canonical bytes sort their
    /// members, and after `received_at` come only `source`, `target` and `writer`, whose keys
    /// are fixed and whose values are strings (a quote inside is escaped) or commitments of
    /// hex strings (§5.4): so the last
    /// `"received_at":"` is the top-level one.
    static func receivedAtOffset(_ c: [UInt8]) -> Int? {
        let key = receivedAtKey
        guard c.count >= key.count + 25 else { return nil }
        return c.withUnsafeBufferPointer { b in
            var i = b.count - key.count - 25
            while i > 0 {
                // `_` (0x5F) is the key's rarest byte to meet: test it before the whole key.
                if b[i + 9] == 0x5F, b[i] == 0x22, b[i - 1] == 0x2C,
                    UnsafeBufferPointer(rebasing: b[i..<i + key.count]).elementsEqual(key)
                {
                    let v = i + key.count
                    return b[v + 24] == 0x22 ? v : nil
                }
                i -= 1
            }
            return nil
        }
    }

    private static let receivedAtKey = Array("\"received_at\":\"".utf8)
}
