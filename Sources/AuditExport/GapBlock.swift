import AuditBase

/// A gap block of an export (format-spec.md §9.3): a perfect subtree of the log's tree,
/// written `<height>:<hash>`. From `auditlog-export/7` the hash is base64url without padding
/// (43 characters, as commitments are written, §5.4.1); before it, 64 hex digits. The proof
/// is most of what an export adds to its entries, so its spelling is its size.
public enum GapBlock {
    /// How a file spells its blocks' hashes.
    public enum Spelling: Sendable { case hex, base64url }

    /// The spelling of export format `tag` (one of `ExportFormat.readable`).
    public static func spelling(of tag: String) -> Spelling {
        tag == "auditlog-export/4" || tag == "auditlog-export/5" || tag == "auditlog-export/6" ? .hex : .base64url
    }

    /// Appends the block as this version writes it.
    public static func append(_ b: (height: Int, hash: Hash), to o: inout [UInt8]) {
        o.append(contentsOf: String(b.height).utf8)
        o.append(0x3A)
        b.hash.withBytes { Base64URL.append($0, to: &o) }
    }

    /// The block as this version writes it.
    public static func text(_ b: (height: Int, hash: Hash)) -> String {
        var o: [UInt8] = []
        append(b, to: &o)
        return String(decoding: o, as: UTF8.self)
    }

    /// The block `text` states in `spelling`: a height from 0 to 62 (decimal, no sign or
    /// leading zero) and exactly one canonical 32-byte hash; nil for anything else.
    public static func parse(_ text: Substring, _ spelling: Spelling) -> (height: Int, hash: Hash)? {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, (1...2).contains(parts[0].count), parts[0].allSatisfy({ ("0"..."9").contains($0) }),
            parts[0].count == 1 || parts[0].first != "0", let h = Int(parts[0]),
            (0...62).contains(h)
        else { return nil }
        let hash: Hash?
        switch spelling {
        case .hex: hash = parts[1].count == 64 ? Hash(hex: String(parts[1])) : nil
        case .base64url:
            hash = parts[1].count == 43 ? Base64URL.decode(String(parts[1])).flatMap(Hash.init(bytes:)) : nil
        }
        return hash.map { (h, $0) }
    }

    /// What a block must look like, for messages.
    public static func shape(_ spelling: Spelling) -> String {
        spelling == .hex ? "<height>:<64 hex digits>" : "<height>:<43 base64url characters>"
    }
}
