import AuditBase

extension Entry {
    /// The pieces of the ingest hot path (`Entry+FastPath.swift`): spans of an entry's bytes,
    /// a one-pass scanner of the JSON it accepts, and the writer of canonical bytes.
    enum FastScan {
        /// A range of an entry's bytes, in 32 bits each end (`fastPrepare` takes no input of
        /// 4 GiB or more): small members keep the scanner's room within what
        /// `withUnsafeTemporaryAllocation` puts on the stack.
        struct Span {
            private var lo: UInt32
            private var hi: UInt32
            init(start: Int, end: Int) {
                lo = UInt32(truncatingIfNeeded: start)
                hi = UInt32(truncatingIfNeeded: end)
            }
            var start: Int { Int(lo) }
            var end: Int { Int(hi) }
            var count: Int { end - start }
        }

        enum Kind { case string, int, literal, object }

        /// Appends canonical bytes, copying spans of the input.
        struct Writer {
            let b: UnsafeBufferPointer<UInt8>
            var o: [UInt8]

            init(b: UnsafeBufferPointer<UInt8>, n: Int) {
                self.b = b
                o = []
                o.reserveCapacity(n + 128)
            }

            @inline(__always) mutating func raw(_ s: StaticString) {
                o.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
            }
            @inline(__always) mutating func quoted(_ s: Span) {
                o.append(0x22)
                o.append(contentsOf: UnsafeBufferPointer(rebasing: b[s.start..<s.end]))
                o.append(0x22)
            }
            mutating func value(_ m: Member) {
                if m.kind == .string {
                    quoted(m.value)
                } else {
                    o.append(contentsOf: UnsafeBufferPointer(rebasing: b[m.value.start..<m.value.end]))
                }
            }
            /// An object of `schema`'s members (`kids[base + i]`, absent when nil), in its
            /// (canonical) order; a member whose slot (`object << 8 | its schema index`) is in
            /// `slots` is written in the committed form of the commitment at the same index in
            /// `made` (§5.4.1).
            mutating func obj(
                _ kids: UnsafeBufferPointer<Member?>, at base: Int, _ schema: EntrySchema.Object, object: Int = 0,
                _ made: [Personal.Made] = [], _ slots: [Int] = []
            ) {
                o.append(0x7B)
                var first = true
                schema.quotedKeys.withUnsafeBufferPointer { keys in
                    for k in 0..<(schema.keyStarts.count - 1) {
                        guard let m = kids[base + k] else { continue }
                        if !first { o.append(0x2C) }
                        first = false
                        o.append(
                            contentsOf: UnsafeBufferPointer(
                                rebasing: keys[schema.keyStarts[k]..<schema.keyStarts[k + 1]]))
                        if let j = slots.firstIndex(of: object << 8 | k) {
                            Personal.appendCommitted(made[j], to: &o)
                        } else {
                            value(m)
                        }
                    }
                }
                o.append(0x7D)
            }
        }

        /// The slots `Entry.fastPrepare` places members in by the schema: 11 top-level, then
        /// the nested objects' 3 + 3 + 3 + 4.
        static let slotCount = 24

        /// A member as scanned: spans of the entry's bytes, and for an object its members' place
        /// in the scanner's `kids`. Plain data: copying one retains nothing.
        struct Member {
            var key: Span
            var kind: Kind
            /// A scalar's bytes, or an object's members' place in `kids` (one span for either
            /// keeps a member at 20 bytes).
            private var span: Span
            /// A scalar's bytes (for an object, empty).
            var value: Span { kind == .object ? Span(start: 0, end: 0) : span }
            /// For an object, its members' place in the scanner's `kids` (otherwise empty).
            var kids: Range<Int> { kind == .object ? span.start..<span.end : 0..<0 }

            init(key: Span, kind: Kind, value: Span) {
                self.key = key
                self.kind = kind
                span = value
            }

            init(key: Span, objectKids kids: Range<Int>) {
                self.key = key
                kind = .object
                span = Span(start: kids.lowerBound, end: kids.upperBound)
            }
        }

        /// Most members the scanner holds: of the top-level object (a valid entry has at most
        /// 11), and of the objects in it together (at most 32 in metadata and 13 in the others).
        /// An entry with more is left to the general parser. (Each room, like `slotCount`'s,
        /// stays within the 1 KiB that `withUnsafeTemporaryAllocation` puts on the stack: above
        /// that it calls posix_memalign.)
        static let topCapacity = 16
        static let kidsCapacity = 48

        struct Scanner {
            let b: UnsafeBufferPointer<UInt8>
            var i = 0
            /// Room for the top-level object's members (`topCapacity`), and for the members of
            /// every object in it (`kidsCapacity`), each object's together (`Member.kids`): the
            /// caller's, on its stack.
            private let topRoom: UnsafeMutableBufferPointer<Member>
            private let kidsRoom: UnsafeMutableBufferPointer<Member>
            private var topCount = 0
            private var kidsCount = 0

            init(
                _ b: UnsafeBufferPointer<UInt8>, top: UnsafeMutableBufferPointer<Member>,
                kids: UnsafeMutableBufferPointer<Member>
            ) {
                self.b = b
                topRoom = top
                kidsRoom = kids
            }

            /// The top-level object's members.
            var top: UnsafeBufferPointer<Member> { UnsafeBufferPointer(rebasing: topRoom[..<topCount]) }
            /// The members of the objects in it, by `Member.kids`.
            var kids: UnsafeBufferPointer<Member> { UnsafeBufferPointer(rebasing: kidsRoom[..<kidsCount]) }

            private mutating func append(_ m: Member, nested: Bool) -> Bool {
                if nested {
                    guard kidsCount < kidsRoom.count else { return false }
                    kidsRoom.initializeElement(at: kidsCount, to: m)
                    kidsCount += 1
                } else {
                    guard topCount < topRoom.count else { return false }
                    topRoom.initializeElement(at: topCount, to: m)
                    topCount += 1
                }
                return true
            }

            @inline(__always) mutating func ws() {
                while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
            }

            mutating func string() -> Span? {
                guard i < b.count, b[i] == 0x22 else { return nil }
                let s = i + 1
                guard let base = b.baseAddress else { return nil }
                // Escapes, control bytes and non-ASCII are the general parser's.
                i = ByteSearch.plainASCIIEnd(base, from: s, end: b.count)
                guard i < b.count, b[i] == 0x22 else { return nil }
                i += 1
                return Span(start: s, end: i - 1)
            }

            mutating func scalar() -> (Kind, Span)? {
                let n = b.count
                guard i < n else { return nil }
                let s = i
                switch b[i] {
                case 0x22: return string().map { (.string, $0) }
                case 0x74:
                    guard i + 4 <= n, b[i + 1] == 0x72, b[i + 2] == 0x75, b[i + 3] == 0x65 else { return nil }
                    i += 4
                case 0x66:
                    guard i + 5 <= n, b[i + 1] == 0x61, b[i + 2] == 0x6C, b[i + 3] == 0x73, b[i + 4] == 0x65 else {
                        return nil
                    }
                    i += 5
                case 0x6E:
                    guard i + 4 <= n, b[i + 1] == 0x75, b[i + 2] == 0x6C, b[i + 3] == 0x6C else { return nil }
                    i += 4
                case 0x2D, 0x30...0x39:
                    if b[i] == 0x2D { i += 1 }
                    let d = i
                    while i < n, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
                    let digits = i - d
                    guard digits >= 1, digits <= 15, !(digits > 1 && b[d] == 0x30),
                        !(b[s] == 0x2D && digits == 1 && b[d] == 0x30)
                    else { return nil }
                    if i < n, b[i] == 0x2E || b[i] == 0x65 || b[i] == 0x45 { return nil }
                    return (.int, Span(start: s, end: i))
                default: return nil
                }
                return (.literal, Span(start: s, end: i))
            }

            /// Scans an object, appending its members to `top`, or for an object in it (`nested`)
            /// to `kids`; objects nest one level only.
            mutating func object(nested: Bool = false) -> Bool {
                guard i < b.count, b[i] == 0x7B else { return false }
                i += 1
                ws()
                if i < b.count, b[i] == 0x7D {
                    i += 1
                    return true
                }
                while true {
                    ws()
                    guard let k = string() else { return false }
                    ws()
                    guard i < b.count, b[i] == 0x3A else { return false }
                    i += 1
                    ws()
                    if i < b.count, b[i] == 0x7B {
                        guard !nested else { return false }
                        let start = kidsCount
                        guard object(nested: true),
                            append(
                                Member(key: k, objectKids: start..<kidsCount),
                                nested: false)
                        else { return false }
                    } else {
                        guard let (kind, v) = scalar(), append(Member(key: k, kind: kind, value: v), nested: nested)
                        else { return false }
                    }
                    ws()
                    guard i < b.count else { return false }
                    if b[i] == 0x2C {
                        i += 1
                        continue
                    }
                    if b[i] == 0x7D {
                        i += 1
                        return true
                    }
                    return false
                }
            }
        }
    }
}
