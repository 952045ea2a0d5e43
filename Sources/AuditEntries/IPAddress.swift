/// Textual IP addresses as `source.ip` accepts them (format-spec.md §4): IPv4 dotted decimal
/// (four decimal octets 0–255, no leading zeros) or IPv6 (RFC 4291 §2.2: eight groups of 1–4
/// hex digits, one `::` for a run of zero groups, an IPv4 tail allowed). No zone, no prefix.
enum IPAddress {
    /// True when `text` is an IPv4 or IPv6 address. An IPv4 address (the common case, checked
    /// for every entry that has one) is read in place, with nothing allocated.
    static func isValid<C: Collection>(_ text: C) -> Bool where C.Element == UInt8 {
        if !text.contains(0x3A) { return isIPv4(text) }
        return isIPv6(Array(text)[...])
    }

    /// Four dot-separated decimal octets 0-255, each of one to three digits, no leading zero.
    static func isIPv4<C: Collection>(_ b: C) -> Bool where C.Element == UInt8 {
        var octets = 0
        var digits = 0
        var value = 0
        var leadingZero = false
        for c in b {
            if c == 0x2E {
                guard digits > 0, octets < 3 else { return false }
                octets += 1
                digits = 0
                value = 0
                continue
            }
            guard c >= 0x30, c <= 0x39, digits < 3 else { return false }
            if digits == 0 { leadingZero = c == 0x30 } else if leadingZero { return false }
            value = value * 10 + Int(c - 0x30)
            digits += 1
            guard value <= 255 else { return false }
        }
        return octets == 3 && digits > 0
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
