import AuditBase

/// The text search's one rule (format-spec §9.3), shared by the read port's search and the
/// export filter: ASCII letters compared without case, every other byte exactly.
public enum TextMatch {
    /// A search text as `contains` takes it: ASCII letters folded to lower case, every other
    /// byte as it is (format-spec §9.3: "ZOË" does not find "Zoë"; "zoë" does).
    public static func fold(_ text: String) -> [UInt8] {
        text.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 32 : $0 }
    }

    /// Whether `hay` holds `needle` (already folded), ASCII letters compared without case: the
    /// hay is folded as the needle was, into scratch space, and searched with memmem (about a
    /// tenth of the time of comparing byte by byte, which was a fifth of a search page's).
    public static func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        hay.withUnsafeBytes { contains(raw: $0, needle) }
    }

    /// `contains` over bytes in place: a whole block of records at once, for example (a text
    /// that is in none of its records' bytes is in none of their contents).
    public static func contains(raw h: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard h.count >= needle.count else { return false }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: h.count) { folded in
            for i in 0..<h.count {
                let c = h[i]
                folded[i] = c &- 0x41 < 26 ? c &+ 32 : c
            }
            return needle.withUnsafeBytes { n in ByteSearch.contains(UnsafeRawBufferPointer(folded), n) }
        }
    }

    /// The byte-by-byte comparison `contains` replaced, kept as the reference its tests check
    /// it against.
    static func containsByBytes(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard hay.count >= needle.count else { return false }
        let first = needle[0]
        var i = 0
        while i <= hay.count - needle.count {
            var c = hay[i]
            if c >= 0x41 && c <= 0x5A { c += 32 }
            if c == first {
                var k = 1
                while k < needle.count {
                    var d = hay[i + k]
                    if d >= 0x41 && d <= 0x5A { d += 32 }
                    if d != needle[k] { break }
                    k += 1
                }
                if k == needle.count { return true }
            }
            i += 1
        }
        return false
    }
}
