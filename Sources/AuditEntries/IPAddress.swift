/// Textual IP addresses as `source.ip` accepts them (format-spec.md §4): IPv4 dotted decimal
/// (four decimal octets 0–255, no leading zeros) or IPv6 (RFC 4291 §2.2: eight groups of 1–4
/// hex digits, one `::` for a run of zero groups, an IPv4 tail allowed). No zone, no prefix.
enum IPAddress {
    /// True when `text` is an IPv4 or IPv6 address.
    static func isValid<C: Collection>(_ text: C) -> Bool where C.Element == UInt8 {
        let b = Array(text)
        return b.contains(0x3A) ? isIPv6(b[...]) : isIPv4(b[...])
    }

    static func isIPv4(_ b: ArraySlice<UInt8>) -> Bool {
        let parts = b.split(separator: 0x2E, omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        for p in parts {
            guard (1...3).contains(p.count), p.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
            if p.count > 1 && p.first == 0x30 { return false }
            guard p.reduce(0, { $0 * 10 + Int($1 - 0x30) }) <= 255 else { return false }
        }
        return true
    }

    static func isIPv6(_ b: ArraySlice<UInt8>) -> Bool {
        guard b.count >= 2, b.count <= 45 else { return false }
        var groups = Array(b.split(separator: 0x3A, omittingEmptySubsequences: false))
        var units = 0
        var elided = false
        // "::" at either end shows up as two empty groups there; in the middle, as one.
        if groups.first?.isEmpty == true {
            guard groups.count > 1, groups[1].isEmpty else { return false }
            groups.removeFirst()
        }
        if groups.last?.isEmpty == true {
            guard groups.count > 1, groups[groups.count - 2].isEmpty else { return false }
            groups.removeLast()
        }
        for (i, g) in groups.enumerated() {
            if g.isEmpty {
                guard !elided else { return false }
                elided = true
                continue
            }
            if i == groups.count - 1, g.contains(0x2E) {
                guard isIPv4(g) else { return false }
                units += 2
                continue
            }
            guard g.count <= 4,
                g.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || ($0 >= 0x41 && $0 <= 0x46) })
            else { return false }
            units += 1
        }
        return elided ? units < 8 : units == 8
    }
}
