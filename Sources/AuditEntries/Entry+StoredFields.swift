import AuditBase

#if canImport(Glibc)
import Glibc
#endif

/// The index fields of stored canonical bytes in one pass, without building a JSON tree:
/// recovery, verification and bundle checks read them for every entry. Canonical bytes are
/// known-good (validated when written, §5.1); anything this scanner does not expect (an escape
/// in a field it returns, a shape it does not know) falls back to the full parser, so the
/// answer is always the parser's.
extension Entry {
    static func scanIndexFields(_ c: [UInt8]) -> (org: String, fields: IndexFields)? {
        c.withUnsafeBufferPointer { scanIndexFields($0) }
    }

    static func scanIndexFields(_ b: UnsafeBufferPointer<UInt8>) -> (org: String, fields: IndexFields)? {
        scanStoredFields(b).map { ($0.org, $0.fields) }
    }

    /// The index fields, and whether the bytes may hold a commitment (`Personal.mayHoldCommitments`,
    /// answered on the way: such an object is one whose first member is `"$c"`, and every
    /// object's start is passed here anyway, where a search over the whole entry was a second
    /// pass over its bytes).
    /// With `interner`, the action and actor strings come from it (the same bytes, the same
    /// String: no allocation each).
    static func scanStoredFields(
        _ b: UnsafeBufferPointer<UInt8>, interner: StringInterner? = nil
    ) -> (org: String, fields: IndexFields, mayHoldCommitments: Bool)? {
        let n = b.count
        var commitments = false
        var org: Range<Int>?
        var cat: Range<Int>?
        var out: Range<Int>?
        var action: Range<Int>?
        var recv: Range<Int>?
        var actorType: Range<Int>?
        var actorId: Range<Int>?
        var committedActor = false

        /// The range of a string's contents starting at the quote at `i`, and the index
        /// after its closing quote; `plain` is false when it holds an escape.
        func string(_ i: Int) -> (Range<Int>, Int, plain: Bool)? {
            guard i < n, b[i] == 0x22, let base = b.baseAddress else { return nil }
            // The closing quote by memchr, then no backslash before it: a plain string, found
            // without a loop over its bytes (a user agent's hundred and more, in every entry).
            guard let q = memchr(base + i + 1, 0x22, n - i - 1) else { return nil }
            let close = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(q))
            if memchr(base + i + 1, 0x5C, close - i - 1) == nil { return ((i + 1)..<close, close + 1, true) }
            var j = i + 1
            var plain = true
            while j < n, b[j] != 0x22 {
                if b[j] == 0x5C {
                    plain = false
                    j += 2
                } else {
                    j += 1
                }
            }
            guard j < n else { return nil }
            return ((i + 1)..<j, j + 1, plain)
        }
        /// The index after the value starting at `i` (any JSON value).
        func skip(_ i: Int) -> Int? {
            guard i < n else { return nil }
            switch b[i] {
            case 0x22: return string(i)?.1
            case 0x7B, 0x5B:
                var depth = 0
                var j = i
                while j < n {
                    switch b[j] {
                    case 0x22:
                        guard let s = string(j) else { return nil }
                        j = s.1
                        continue
                    case 0x7B:
                        depth += 1
                        if !commitments, commitmentAt(j) { commitments = true }
                    case 0x5B: depth += 1
                    case 0x7D, 0x5D:
                        depth -= 1
                        if depth == 0 { return j + 1 }
                    default: break
                    }
                    j += 1
                }
                return nil
            default:
                var j = i
                while j < n, b[j] != 0x2C, b[j] != 0x7D, b[j] != 0x5D { j += 1 }
                return j
            }
        }
        func equals(_ r: Range<Int>, _ s: StaticString) -> Bool {
            guard r.count == s.utf8CodeUnitCount else { return false }
            return s.withUTF8Buffer { k in zip(r, k).allSatisfy { b[$0] == $1 } }
        }
        /// Whether the object starting at `i` opens as a commitment does.
        func commitmentAt(_ i: Int) -> Bool {
            let needle = Personal.commitmentNeedle
            guard n - i >= needle.utf8CodeUnitCount else { return false }
            return equals(i..<(i + needle.utf8CodeUnitCount), needle)
        }
        /// The members of the object at `i`: calls `member(keyRange, valueStart)`, which
        /// returns the index after the value. Returns the index after the object.
        func members(_ i: Int, _ member: (Range<Int>, Int) -> Int?) -> Int? {
            guard i < n, b[i] == 0x7B else { return nil }
            if !commitments, commitmentAt(i) { commitments = true }
            var j = i + 1
            if j < n, b[j] == 0x7D { return j + 1 }
            while j < n {
                guard let (key, after, plain) = string(j), plain, after < n, b[after] == 0x3A,
                    let end = member(key, after + 1), end < n
                else { return nil }
                if b[end] == 0x7D { return end + 1 }
                guard b[end] == 0x2C else { return nil }
                j = end + 1
            }
            return nil
        }
        /// `{"$c":"<43>","$s":"<22>"}` at `i`: the tag's range and the index after the object.
        func committedTag(_ i: Int) -> (range: Range<Int>, after: Int)? {
            let head: StaticString = #"{"$c":""#
            let middle: StaticString = #"","$s":""#
            let h = head.utf8CodeUnitCount
            let m = middle.utf8CodeUnitCount
            let total = h + 43 + m + 22 + 2
            guard n - i >= total, equals(i..<(i + h), head), equals((i + h + 43)..<(i + h + 43 + m), middle),
                b[i + total - 2] == 0x22, b[i + total - 1] == 0x7D
            else { return nil }
            let tag = (i + h + 43 + m)..<(i + h + 43 + m + 22)
            // Exactly what the parser accepts: a 32-byte commitment and a 16-byte tag.
            func decoded(_ r: Range<Int>) -> Int? {
                Base64URL.decode(String(decoding: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self))?.count
            }
            guard decoded((i + h)..<(i + h + 43)) == 32, decoded(tag) == 16 else { return nil }
            commitments = true
            return (tag, i + total)
        }
        func plainString(_ at: Int, into r: inout Range<Int>?) -> Int? {
            // A repeated member is not canonical: the parser decides.
            guard r == nil, let (range, after, plain) = string(at), plain else { return nil }
            r = range
            return after
        }
        let end = members(0) { key, v in
            if equals(key, "org") { return plainString(v, into: &org) }
            if equals(key, "category") { return plainString(v, into: &cat) }
            if equals(key, "outcome") { return plainString(v, into: &out) }
            if equals(key, "action") { return plainString(v, into: &action) }
            if equals(key, "received_at") { return plainString(v, into: &recv) }
            if equals(key, "actor") {
                return members(v) { k, w in
                    if equals(k, "type") { return plainString(w, into: &actorType) }
                    if equals(k, "id") {
                        guard w < n, b[w] == 0x7B else { return plainString(w, into: &actorId) }
                        // A committed id (§5.4.1), in its one canonical shape: its tag.
                        guard actorId == nil, let tag = committedTag(w) else { return nil }
                        actorId = tag.range
                        committedActor = true
                        return tag.after
                    }
                    return skip(w)
                }
            }
            return skip(v)
        }
        guard end == n, let org, let cat, let out, let action, let recv, let actorType, let actorId else {
            return nil
        }
        func str(_ r: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self) }
        // (No String on the way for the time, and one for the actor: this runs for every
        // entry verified.)
        guard let category = Category(utf8: UnsafeBufferPointer(rebasing: b[cat])),
            let outcome = Outcome(utf8: UnsafeBufferPointer(rebasing: b[out])),
            let time = Timestamp.parse(bytes: UnsafeBufferPointer(rebasing: b[recv]))
        else { return nil }
        // The actor as `type:id`, or `type:$s:tag` when its id is committed (§5.4.1).
        let separator: StaticString = committedActor ? ":$s:" : ":"
        let actor = separator.withUTF8Buffer { sep in
            let (t, i) = (UnsafeBufferPointer(rebasing: b[actorType]), UnsafeBufferPointer(rebasing: b[actorId]))
            return interner?.string(t, sep, i) ?? StringInterner.joined(t, sep, i)
        }
        let actionString = interner?.string(UnsafeBufferPointer(rebasing: b[action])) ?? str(action)
        return (
            str(org),
            IndexFields(time: time, category: category, outcome: outcome, action: actionString, actor: actor),
            commitments
        )
    }

    /// True when the scanner agrees with the full parser on `content`, or defers to it: the
    /// differential check the fuzzer runs on every canonical entry it makes.
    public static func storedFieldScannerAgrees(_ content: [UInt8]) -> Bool {
        guard let scanned = content.withUnsafeBufferPointer({ scanStoredFields($0) }) else { return true }
        guard let parsed = parsedIndexFields(ofStored: content) else { return false }
        return scanned.org == parsed.org && scanned.fields == parsed.fields
            && scanned.mayHoldCommitments == Personal.mayHoldCommitments(content)
    }
}
