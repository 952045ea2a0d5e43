import AuditBase

/// How an entry's committed fields group under their commitments (format-spec.md §5.4.1): the
/// one rule the writer, the personal store's check, the read port and `verify-export` share.
///
/// The fields of one subject in one entry are covered by one commitment, held by the first of
/// them in path order (`{"$c": C, "$s": S}`); the others are written `{"$s": S}`. A subject
/// with one field, and every field of an entry written before format 3 (each `{"$c","$s"}`),
/// is a group of one.
extension Personal {
    /// One subject's committed fields in one entry, and the commitment that covers them.
    public struct Group: Sendable, Equatable {
        /// The subject tag.
        public var tag: SubjectTag
        /// The commitment.
        public var commitment: Hash
        /// The fields' paths, in path order.
        public var paths: [String]
    }

    /// The groups of an entry's committed fields (`commitments(in:)`, path order), or nil when
    /// they break the rule: a tag's fields are either each `{"$c","$s"}` or one `{"$c","$s"}`
    /// followed by `{"$s"}` ones.
    public static func groups(_ committed: [Committed]) -> [Group]? {
        var out: [Group] = []
        var last: [SubjectTag: Int] = [:]
        var heads: [SubjectTag: Int] = [:]
        for c in committed {
            if let h = c.commitment {
                // A head after a group with tails would be a second reading of one subject.
                if let g = last[c.tag], out[g].paths.count > 1 { return nil }
                heads[c.tag, default: 0] += 1
                last[c.tag] = out.count
                out.append(Group(tag: c.tag, commitment: h, paths: [c.path]))
            } else {
                // A tail follows the one head of its tag.
                guard heads[c.tag] == 1, let g = last[c.tag] else { return nil }
                out[g].paths.append(c.path)
            }
        }
        return out
    }

    /// Hashes a group's opening: `H(0x00 || nonce || v)` for a group of one (§5.4.1, as every
    /// entry before format 3), `H(0x02 || nonce || (pathLen:u8 path valueLen:u16 v)*)` in path
    /// order for more (lengths little-endian).
    struct Opening {
        private var sha: SHA256.Stream
        private let framed: Bool
        private(set) var fits = true

        init(nonce: UnsafeRawBufferPointer, fields: Int) {
            framed = fields > 1
            sha = SHA256.Stream(prefix: framed ? 0x02 : 0x00)
            sha.update(nonce)
        }

        mutating func add(path: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
            if framed {
                guard path.count <= 255, value.count <= 65_535 else {
                    fits = false
                    return
                }
                // `pathLen path valueLen` in one update (a call into OpenSSL each costs more than
                // the bytes).
                withUnsafeTemporaryAllocation(byteCount: path.count + 3, alignment: 1) { h in
                    h[0] = UInt8(path.count)
                    UnsafeMutableRawBufferPointer(rebasing: h[1..<(1 + path.count)]).copyMemory(from: path)
                    h[1 + path.count] = UInt8(value.count & 0xFF)
                    h[2 + path.count] = UInt8(value.count >> 8)
                    sha.update(UnsafeRawBufferPointer(h))
                }
            }
            sha.update(value)
        }

        mutating func finish() -> Hash? {
            let h = sha.finish()
            return fits ? h : nil
        }
    }
}

extension Personal.Group {
    /// Whether `values` (one per path, in order) with `nonce` open the commitment.
    public func opens(nonce: [UInt8], values: [String]) -> Bool {
        guard nonce.count == Personal.nonceSize, values.count == paths.count else { return false }
        return Personal.commitment(nonce: nonce, paths: paths, values: values) == commitment
    }
}

extension Personal {
    /// The commitment of `values` at `paths` (path order) under `nonce`; nil when a path or a
    /// value is too long to frame.
    public static func commitment(nonce: [UInt8], paths: [String], values: [String]) -> Hash? {
        nonce.withUnsafeBytes { n in
            var o = Opening(nonce: n, fields: paths.count)
            for (p, v) in zip(paths, values) {
                var p = p
                var v = v
                p.withUTF8 { pb in
                    v.withUTF8 { o.add(path: UnsafeRawBufferPointer(pb), value: UnsafeRawBufferPointer($0)) }
                }
            }
            return o.finish()
        }
    }

    /// Path order (§5.4.1): the paths' UTF-8 bytes compared as bytes.
    static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}
