import AuditBase

/// `received_at` never decreases in sequence order (format-spec.md §5.1): entries prepared on
/// different connections can reach the commit path a little out of clock order, so the commit
/// path raises an earlier time to the previous entry's before sequencing it.
extension PreparedEntry {
    /// This entry with `received_at` set to `ms` (its canonical bytes and hash redone), or nil
    /// when its bytes hold no top-level `received_at` of the fixed 24-byte form.
    public func restamped(_ ms: Int64) -> PreparedEntry? {
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
            org: org, content: bytes, contentHash: SHA256.hash(bytes), idempotencyKey: idempotencyKey, fields: f)
    }

    /// Where the value of the top-level `received_at` starts. Canonical bytes sort their
    /// members, and after `received_at` come only `source`, `target` and `writer`, whose keys
    /// are fixed and whose values are strings (a quote inside is escaped): so the last
    /// `"received_at":"` is the top-level one.
    static func receivedAtOffset(_ c: [UInt8]) -> Int? {
        let key = Array("\"received_at\":\"".utf8)
        guard c.count >= key.count + 25 else { return nil }
        var i = c.count - key.count - 25
        while i >= 0 {
            if c[i] == 0x22, c[i..<i + key.count].elementsEqual(key), i > 0, c[i - 1] == 0x2C {
                let v = i + key.count
                return c[v + 24] == 0x22 ? v : nil
            }
            i -= 1
        }
        return nil
    }
}
