import AuditBase
import LogProofs

/// The ingest hot path: recognises a *valid* entry in one pass over its bytes and writes its
/// canonical form directly, copying strings whole. It never rejects: anything it does not
/// positively accept (escapes, non-ASCII, arrays, a rule it would break) returns nil, and
/// `Entry.prepare` falls back to the general parser and validator, which are the reference and
/// say precisely what is wrong. Tests check both paths give identical bytes.
extension Entry {
    private struct Span {
        var start: Int
        var end: Int
        var count: Int { end - start }
    }

    private enum Kind { case string, int, literal, object }

    /// Appends canonical bytes, copying spans of the input.
    private struct Writer2 {
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
        /// An object of `schema`'s members, in its (canonical) order; a member whose slot
        /// (`object << 8 | its schema index`) is in `slots` is written in the committed form of
        /// the commitment at the same index in `made` (§5.4.1).
        mutating func obj(
            _ kids: [Member?], _ schema: EntrySchema.Object, object: Int = 0, _ made: [Personal.Made] = [],
            _ rows: [SealedRow] = [], _ slots: [Int] = []
        ) {
            o.append(0x7B)
            var first = true
            for (k, m) in kids.enumerated() {
                guard let m else { continue }
                if !first { o.append(0x2C) }
                first = false
                o.append(0x22)
                o.append(contentsOf: schema.members[k].name.utf8)
                o.append(0x22)
                o.append(0x3A)
                if let j = slots.firstIndex(of: object << 8 | k) {
                    Personal.appendCommitted(made[j].commitment, rows[made[j].row].key.tag, to: &o)
                } else {
                    value(m)
                }
            }
            o.append(0x7D)
        }
    }

    private struct Member {
        var key: Span
        var kind: Kind
        var value: Span
        var children: [Member] = []
    }

    private struct Scanner {
        let b: UnsafeBufferPointer<UInt8>
        var i = 0

        init(_ b: UnsafeBufferPointer<UInt8>) { self.b = b }

        @inline(__always) mutating func ws() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
        }

        mutating func string() -> Span? {
            guard i < b.count, b[i] == 0x22 else { return nil }
            i += 1
            let s = i
            while i < b.count {
                let c = b[i]
                if c == 0x22 {
                    defer { i += 1 }
                    return Span(start: s, end: i)
                }
                if c == 0x5C || c < 0x20 || c >= 0x7F { return nil }
                i += 1
            }
            return nil
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

        mutating func object(depth: Int) -> [Member]? {
            guard i < b.count, b[i] == 0x7B else { return nil }
            i += 1
            var out: [Member] = []
            out.reserveCapacity(depth == 0 ? 12 : 4)
            ws()
            if i < b.count, b[i] == 0x7D {
                i += 1
                return out
            }
            while true {
                ws()
                guard let k = string() else { return nil }
                ws()
                guard i < b.count, b[i] == 0x3A else { return nil }
                i += 1
                ws()
                if i < b.count, b[i] == 0x7B {
                    guard depth == 0, let kids = object(depth: 1) else { return nil }
                    out.append(Member(key: k, kind: .object, value: Span(start: 0, end: 0), children: kids))
                } else {
                    guard let (kind, v) = scalar() else { return nil }
                    out.append(Member(key: k, kind: kind, value: v))
                }
                ws()
                guard i < b.count else { return nil }
                if b[i] == 0x2C {
                    i += 1
                    continue
                }
                if b[i] == 0x7D {
                    i += 1
                    return out
                }
                return nil
            }
        }
    }

    /// The slot of `actor.id` (object 0, its schema index).
    private static let actorIDSlot = EntrySchema.actor.members.firstIndex { $0.name == "id" } ?? -1

    static func fastPrepare(
        _ b: UnsafeBufferPointer<UInt8>, receivedAt: Int64, writer: Writer, keys: SubjectKeys? = nil
    ) -> PreparedEntry? {
        let n = b.count
        func eqString(_ s: Span, _ lit: String) -> Bool {
            var lit = lit
            return lit.withUTF8 { u in
                u.count == s.count && UnsafeBufferPointer(rebasing: b[s.start..<s.end]).elementsEqual(u)
            }
        }
        func eq(_ s: Span, _ lit: StaticString) -> Bool {
            guard s.count == lit.utf8CodeUnitCount else { return false }
            let p = lit.utf8Start
            for k in 0..<s.count where b[s.start + k] != p[k] { return false }
            return true
        }
        func ident(_ s: Span, max: Int) -> Bool {
            guard s.count >= 1, s.count <= max else { return false }
            for k in s.start..<s.end {
                let c = b[k]
                guard
                    (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F
                        || c == 0x2E || c == 0x3A || c == 0x2D || c == 0x40 || c == 0x2F
                else { return false }
            }
            return true
        }
        func text(_ s: Span, max: Int) -> Bool {
            guard s.count >= 1, s.count <= max else { return false }
            for k in s.start..<s.end where b[k] == 0x7F { return false }
            return true
        }
        func str(_ s: Span) -> String {
            String(decoding: UnsafeBufferPointer(rebasing: b[s.start..<s.end]), as: UTF8.self)
        }

        var sc = Scanner(b)
        sc.ws()
        guard let top = sc.object(depth: 0) else { return nil }
        sc.ws()
        guard sc.i == n else { return nil }

        // Top-level members in canonical order; each slot filled at most once.
        // action actor category idempotency_key metadata occurred_at on_behalf_of org outcome source target
        var slot = [Member?](repeating: nil, count: 11)
        for m in top {
            let k = m.key
            let idx: Int
            if eq(k, "action") {
                idx = 0
            } else if eq(k, "actor") {
                idx = 1
            } else if eq(k, "category") {
                idx = 2
            } else if eq(k, "idempotency_key") {
                idx = 3
            } else if eq(k, "metadata") {
                idx = 4
            } else if eq(k, "occurred_at") {
                idx = 5
            } else if eq(k, "on_behalf_of") {
                idx = 6
            } else if eq(k, "org") {
                idx = 7
            } else if eq(k, "outcome") {
                idx = 8
            } else if eq(k, "source") {
                idx = 9
            } else if eq(k, "target") {
                idx = 10
            } else {
                return nil
            }
            guard slot[idx] == nil else { return nil }
            slot[idx] = m
        }
        guard let action = slot[0], action.kind == .string, ident(action.value, max: EntrySchema.action.maxBytes),
            let actor = slot[1], actor.kind == .object,
            let category = slot[2], category.kind == .string,
            let occurred = slot[5], occurred.kind == .string, occurred.value.count <= EntrySchema.occurredAt.maxBytes,
            let org = slot[7], org.kind == .string, ident(org.value, max: EntrySchema.org.maxBytes),
            let outcome = slot[8], outcome.kind == .string,
            let source = slot[9], source.kind == .object,
            let target = slot[10], target.kind == .object
        else { return nil }
        guard let cat = Category.allCases.first(where: { c in eqString(category.value, c.rawValue) }),
            let out = Outcome.allCases.first(where: { o in eqString(outcome.value, o.rawValue) }),
            Timestamp.parse(bytes: UnsafeBufferPointer(rebasing: b[occurred.value.start..<occurred.value.end])) != nil
        else { return nil }
        if let k = slot[3] {
            guard k.kind == .string, text(k.value, max: EntrySchema.idempotencyKey.maxBytes) else { return nil }
        }

        // Nested objects by the schema: its members only, each present unless optional, string
        // values within its limits and alphabet, from its values when it has them.
        func nested(_ m: Member, _ schema: EntrySchema.Object) -> [Member?]? {
            let rows = schema.members
            var found = [Member?](repeating: nil, count: rows.count)
            for c in m.children {
                guard c.kind == .string, let j = rows.indices.first(where: { eqString(c.key, rows[$0].name) }),
                    found[j] == nil,
                    rows[j].identifier ? ident(c.value, max: rows[j].maxBytes) : text(c.value, max: rows[j].maxBytes)
                else { return nil }
                if let values = rows[j].values, !values.contains(where: { eqString(c.value, $0) }) { return nil }
                found[j] = c
            }
            for j in rows.indices where found[j] == nil && !rows[j].optional { return nil }
            return found
        }
        // Slots by the schema's canonical order: actor (id, name, type), on_behalf_of (approval,
        // id, type), target (id, name, type), source (ip, service, session, user_agent).
        guard let act = nested(actor, EntrySchema.actor), let actorId = act[0], let actorType = act[2] else {
            return nil
        }
        if let ob = slot[6] {
            guard ob.kind == .object, nested(ob, EntrySchema.onBehalfOf) != nil else { return nil }
        } else if eq(actorType.value, "agent") {
            return nil
        }
        guard let tg = nested(target, EntrySchema.target) else { return nil }
        guard let src = nested(source, EntrySchema.source) else { return nil }
        if let ip = src[0], !IPAddress.isValid(UnsafeBufferPointer(rebasing: b[ip.value.start..<ip.value.end])) {
            return nil
        }
        var meta: [Member] = []
        if let m = slot[4] {
            guard m.kind == .object, m.children.count <= EntrySchema.maxMetadataKeys else { return nil }
            for c in m.children {
                guard ident(c.key, max: EntrySchema.maxMetadataKey), c.kind != .object,
                    forbiddenReason(str(c.key)) == nil
                else { return nil }
                if c.kind == .string && c.value.count > EntrySchema.maxMetadataString { return nil }
                meta.append(c)
            }
            // Duplicate metadata keys are refused by the general parser; sort, then compare neighbours.
            meta.sort { x, y in
                let a = UnsafeBufferPointer(rebasing: b[x.key.start..<x.key.end])
                let c = UnsafeBufferPointer(rebasing: b[y.key.start..<y.key.end])
                return a.lexicographicallyPrecedes(c)
            }
            for k in meta.indices.dropFirst()
            where meta[k].key.count == meta[k - 1].key.count
                && UnsafeBufferPointer(rebasing: b[meta[k].key.start..<meta[k].key.end]).elementsEqual(
                    UnsafeBufferPointer(rebasing: b[meta[k - 1].key.start..<meta[k - 1].key.end]))
            {
                return nil
            }
        }

        // Personal fields (§5.4.1) by the one rule, committed; the strings here are plain ASCII,
        // so a span's bytes are its value.
        let obKids = slot[6].flatMap { nested($0, EntrySchema.onBehalfOf) }
        // Each commitment's slot: its object (actor 0, on_behalf_of 1, source 2, target 3) << 8 | its
        // schema index. Left empty (no allocation) for a log that does not commit personal fields.
        var slots: [Int] = []
        var made: [Personal.Made] = []
        var rows: [SealedRow] = []
        if let keys {
            // Called about ten times an entry by the rule: no tuples of arrays to copy, only
            // the schema's few names to compare.
            func objectIndex(_ o: String) -> Int? {
                switch o {
                case "actor": return 0
                case "on_behalf_of": return obKids == nil ? nil : 1
                case "source": return 2
                case "target": return 3
                default: return nil
                }
            }
            func memberIndex(_ i: Int, _ k: String) -> Int? {
                switch i {
                case 0: return EntrySchema.actor.members.firstIndex { $0.name == k }
                case 1: return EntrySchema.onBehalfOf.members.firstIndex { $0.name == k }
                case 2: return EntrySchema.source.members.firstIndex { $0.name == k }
                default: return EntrySchema.target.members.firstIndex { $0.name == k }
                }
            }
            func span(_ i: Int, _ j: Int) -> Span? {
                switch i {
                case 0: return act[j]?.value
                case 1: return obKids?[j]?.value
                case 2: return src[j]?.value
                default: return tg[j]?.value
                }
            }
            func member(_ o: String, _ k: String) -> String? {
                guard let i = objectIndex(o), let j = memberIndex(i, k), let v = span(i, j) else { return nil }
                return str(v)
            }
            guard let fields = try? Personal.plan(member),
                let committed = try? Personal.commit(fields, org: str(org.value), keys: keys)
            else { return nil }
            (made, rows) = committed
            slots.reserveCapacity(fields.count)
            for f in fields {
                guard let i = objectIndex(f.object), let j = memberIndex(i, f.member) else { return nil }
                slots.append(i << 8 | j)
            }
        }

        // Canonical bytes.
        var w = Writer2(b: b, n: n + 96 * made.count)
        w.raw("{\"action\":")
        w.quoted(action.value)
        w.raw(",\"actor\":")
        w.obj(act, EntrySchema.actor, object: 0, made, rows, slots)
        w.raw(",\"category\":")
        w.quoted(category.value)
        if let k = slot[3] {
            w.raw(",\"idempotency_key\":")
            w.quoted(k.value)
        }
        w.raw(",\"metadata\":{")
        for (k, m) in meta.enumerated() {
            if k > 0 { w.o.append(0x2C) }
            w.quoted(m.key)
            w.o.append(0x3A)
            w.value(m)
        }
        w.raw("},\"occurred_at\":")
        w.quoted(occurred.value)
        if let kids = obKids {
            w.raw(",\"on_behalf_of\":")
            w.obj(kids, EntrySchema.onBehalfOf, object: 1, made, rows, slots)
        }
        w.raw(",\"org\":")
        w.quoted(org.value)
        w.raw(",\"outcome\":")
        w.quoted(outcome.value)
        w.raw(",\"received_at\":\"")
        Timestamp.append(receivedAt, to: &w.o)
        w.o.append(0x22)
        w.raw(",\"source\":")
        w.obj(src, EntrySchema.source, object: 2, made, rows, slots)
        w.raw(",\"target\":")
        w.obj(tg, EntrySchema.target, object: 3, made, rows, slots)
        w.raw(",\"writer\":")
        w.o.append(contentsOf: writer.canonical)
        w.raw("}")
        let o = w.o
        guard o.count <= ChainFormat.maxEntrySize else { return nil }
        return PreparedEntry(
            org: str(org.value), content: o, contentHash: SHA256.hash(o), idempotencyKey: slot[3].map { str($0.value) },
            fields: IndexFields(
                time: receivedAt, category: cat, outcome: out, action: str(action.value),
                actor: str(actorType.value) + ":"
                    + (slots.firstIndex(of: Self.actorIDSlot).map { Personal.indexID(tag: rows[made[$0].row].key.tag) }
                        ?? str(actorId.value))),
            sealedRows: rows)
    }
}
