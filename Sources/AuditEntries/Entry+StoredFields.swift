import AuditBase

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
        guard let f = scanStoredSpans(b) else { return nil }
        func bytes(_ r: Range<Int>) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: b[r]) }
        let actor = f.actorSeparator.withUTF8Buffer { sep in
            interner?.string(bytes(f.actorType), sep, bytes(f.actorId))
                ?? StringInterner.joined(bytes(f.actorType), sep, bytes(f.actorId))
        }
        let actionString = interner?.string(bytes(f.action)) ?? String(decoding: bytes(f.action), as: UTF8.self)
        return (
            String(decoding: bytes(f.org), as: UTF8.self),
            IndexFields(time: f.time, category: f.category, outcome: f.outcome, action: actionString, actor: actor),
            f.mayHoldCommitments
        )
    }

    /// The index fields of stored canonical bytes where they lie in them, in one pass, with no
    /// String made (`StoredSpans`); nil where the scanner defers to the full parser.
    static func scanStoredSpans(_ b: UnsafeBufferPointer<UInt8>) -> StoredSpans? {
        guard let base = b.baseAddress else { return nil }
        var s = StoredScan(p: base, n: b.count)
        var org: Range<Int>?
        var cat: Range<Int>?
        var out: Range<Int>?
        var action: Range<Int>?
        var recv: Range<Int>?
        var actorType: Range<Int>?
        var actorId: Range<Int>?
        var committedActor = false

        // The top level's members; `actor`'s, one level down.
        guard var j = s.open(0) else { return nil }
        while let (key, v) = s.member(&j) {
            let after: Int?
            if s.equals(key, "org") {
                after = s.plainString(v, into: &org)
            } else if s.equals(key, "category") {
                after = s.plainString(v, into: &cat)
            } else if s.equals(key, "outcome") {
                after = s.plainString(v, into: &out)
            } else if s.equals(key, "action") {
                after = s.plainString(v, into: &action)
            } else if s.equals(key, "received_at") {
                after = s.plainString(v, into: &recv)
            } else if s.equals(key, "actor") {
                guard var k = s.open(v) else { return nil }
                while let (akey, w) = s.member(&k) {
                    let next: Int?
                    if s.equals(akey, "type") {
                        next = s.plainString(w, into: &actorType)
                    } else if s.equals(akey, "id") {
                        if w < s.n, s.p[w] == 0x7B {
                            // A committed id (§5.4.1), in its one canonical shape: its tag.
                            guard actorId == nil, let tag = s.committedTag(w) else { return nil }
                            actorId = tag.range
                            committedActor = true
                            next = tag.after
                        } else {
                            next = s.plainString(w, into: &actorId)
                        }
                    } else {
                        next = s.skip(w)
                    }
                    guard let next, s.next(&k, after: next) else { return nil }
                }
                after = k
            } else {
                after = s.skip(v)
            }
            guard let after, s.next(&j, after: after) else { return nil }
        }
        guard j == s.n, let org, let cat, let out, let action, let recv, let actorType, let actorId else {
            return nil
        }
        func bytes(_ r: Range<Int>) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: b[r]) }
        // (No String on the way: this runs for every entry verified.)
        guard let category = Category(utf8: bytes(cat)), let outcome = Outcome(utf8: bytes(out)),
            let time = Timestamp.parse(bytes: bytes(recv))
        else { return nil }
        return StoredSpans(
            org: org, action: action, actorType: actorType, actorId: actorId, committedActor: committedActor,
            time: time, category: category, outcome: outcome, mayHoldCommitments: s.commitments)
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

/// An entry's index fields as the stored-fields scanner finds them in its canonical bytes:
/// strings as byte ranges of those bytes (plain, no escape), the rest parsed. What the verifier
/// compares with an index row in place, with no String made.
public struct StoredSpans: Sendable {
    /// The org's bytes.
    public var org: Range<Int>
    /// The action's bytes.
    public var action: Range<Int>
    /// The actor's type.
    public var actorType: Range<Int>
    /// The actor's id, or its commitment's tag when `committedActor`.
    public var actorId: Range<Int>
    /// Whether the actor's id is committed (§5.4.1).
    public var committedActor: Bool
    /// `received_at`, ms since the epoch.
    public var time: Int64
    /// Category.
    public var category: Category
    /// Outcome.
    public var outcome: Outcome
    /// Whether the bytes may hold a commitment (`Personal.mayHoldCommitments`).
    public var mayHoldCommitments: Bool

    /// What goes between the actor's type and id in the index's `type:id` (`type:$s:tag` when
    /// the id is committed).
    public var actorSeparator: StaticString { committedActor ? ":$s:" : ":" }
}

extension Entry {
    /// The index fields of stored bytes in place (`StoredSpans`), or nil where the scanner
    /// defers to the parser (`storedFields(ofStored:)` answers then).
    public static func storedSpans(ofStored content: UnsafeBufferPointer<UInt8>) -> StoredSpans? {
        scanStoredSpans(content)
    }
}

/// The stored-fields scan's cursor over canonical bytes: a value with the state it needs (the
/// scan was nested functions over captured variables, which the compiler kept in boxes with
/// an exclusivity check at run time on every access).
private struct StoredScan {
    let p: UnsafePointer<UInt8>
    let n: Int
    /// An object opening as a commitment (`Personal.commitmentNeedle`) was passed.
    var commitments = false

    /// The range of a string's contents starting at the quote at `i`, and the index after its
    /// closing quote; `plain` is false when it holds an escape.
    func string(_ i: Int) -> (Range<Int>, Int, plain: Bool)? {
        guard i < n, p[i] == 0x22 else { return nil }
        // The first quote or backslash, eight bytes a step: a quote there closes a plain
        // string (a user agent's hundred bytes and more, in every entry, in a few steps).
        var j = ByteSearch.quoteOrBackslash(p, from: i + 1, end: n)
        guard j < n else { return nil }
        if p[j] == 0x22 { return ((i + 1)..<j, j + 1, true) }
        while j < n, p[j] != 0x22 { j += p[j] == 0x5C ? 2 : 1 }
        guard j < n else { return nil }
        return ((i + 1)..<j, j + 1, false)
    }

    /// The index after the value starting at `i` (any JSON value).
    mutating func skip(_ i: Int) -> Int? {
        guard i < n else { return nil }
        switch p[i] {
        case 0x22: return string(i)?.1
        case 0x7B, 0x5B:
            var depth = 0
            var j = i
            while j < n {
                switch p[j] {
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
            while j < n, p[j] != 0x2C, p[j] != 0x7D, p[j] != 0x5D { j += 1 }
            return j
        }
    }

    /// Whether the bytes at `r` are `s` (a key of a few bytes: compared here, not by a call).
    func equals(_ r: Range<Int>, _ s: StaticString) -> Bool {
        guard r.count == s.utf8CodeUnitCount, r.upperBound <= n else { return false }
        let (a, b) = (p + r.lowerBound, s.utf8Start)
        var k = 0
        while k < r.count, a[k] == b[k] { k += 1 }
        return k == r.count
    }

    /// Whether the object starting at `i` opens as a commitment does.
    func commitmentAt(_ i: Int) -> Bool {
        let needle = Personal.commitmentNeedle
        return n - i >= needle.utf8CodeUnitCount && equals(i..<(i + needle.utf8CodeUnitCount), needle)
    }

    /// Enters the object at `i`: the index of its first member (or of its `}`).
    mutating func open(_ i: Int) -> Int? {
        guard i < n, p[i] == 0x7B else { return nil }
        if !commitments, commitmentAt(i) { commitments = true }
        return i + 1
    }

    /// The next member of the object whose members continue at `j`: its key's range and
    /// where its value starts; nil at the object's end, with `j` then past its `}` (or at
    /// `n + 1` when the bytes are not an object this scan knows).
    func member(_ j: inout Int) -> (Range<Int>, Int)? {
        if j < n, p[j] == 0x7D {
            j += 1
            return nil
        }
        guard let (key, after, plain) = string(j), plain, after < n, p[after] == 0x3A else {
            j = n + 1
            return nil
        }
        return (key, after + 1)
    }

    /// After a member's value, which ended at `end`: false when what follows is neither
    /// `,` (then `j` is the next member) nor `}` (then `j` points at it).
    func next(_ j: inout Int, after end: Int) -> Bool {
        guard end < n else { return false }
        if p[end] == 0x7D {
            j = end
            return true
        }
        guard p[end] == 0x2C, end + 1 < n, p[end + 1] != 0x7D else { return false }
        j = end + 1
        return true
    }

    /// `{"$c":"<43>","$s":"<22>"}` at `i`: the tag's range and the index after the object.
    mutating func committedTag(_ i: Int) -> (range: Range<Int>, after: Int)? {
        let head: StaticString = #"{"$c":""#
        let middle: StaticString = #"","$s":""#
        let h = head.utf8CodeUnitCount
        let m = middle.utf8CodeUnitCount
        let total = h + 43 + m + 22 + 2
        guard n - i >= total, equals(i..<(i + h), head), equals((i + h + 43)..<(i + h + 43 + m), middle),
            p[i + total - 2] == 0x22, p[i + total - 1] == 0x7D
        else { return nil }
        let tag = (i + h + 43 + m)..<(i + h + 43 + m + 22)
        // Exactly what the parser accepts: a 32-byte commitment and a 16-byte tag.
        func decoded(_ r: Range<Int>) -> Int? {
            Base64URL.decode(
                String(decoding: UnsafeBufferPointer(start: p + r.lowerBound, count: r.count), as: UTF8.self))?
                .count
        }
        guard decoded((i + h)..<(i + h + 43)) == 32, decoded(tag) == 16 else { return nil }
        commitments = true
        return (tag, i + total)
    }

    /// The plain string at `at` into `r` (which must be unset: a repeated member is not
    /// canonical, and the parser decides); the index after it.
    func plainString(_ at: Int, into r: inout Range<Int>?) -> Int? {
        guard r == nil, let (range, after, plain) = string(at), plain else { return nil }
        r = range
        return after
    }
}
