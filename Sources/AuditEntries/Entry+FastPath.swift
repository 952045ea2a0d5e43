import AuditBase
import LogProofs

/// The ingest hot path: recognises a *valid* entry in one pass over its bytes and writes its
/// canonical form directly, copying strings whole. It never rejects: anything it does not
/// positively accept (escapes, non-ASCII, arrays, a rule it would break) returns nil, and
/// `Entry.prepare` falls back to the general parser and validator, which are the reference and
/// say precisely what is wrong. Tests check both paths give identical bytes.
extension Entry {
    private typealias Span = FastScan.Span
    private typealias Kind = FastScan.Kind
    private typealias Writer2 = FastScan.Writer
    private typealias Member = FastScan.Member
    private typealias Scanner = FastScan.Scanner

    /// True when the fast path declines `json` or makes exactly what the general path makes of
    /// it (canonical bytes, their hash and the index fields; no personal fields committed,
    /// whose nonces differ run to run): the differential check the fuzzer runs on every input.
    public static func preparePathsAgree(json: [UInt8], receivedAt: Int64, writer: Writer) -> Bool {
        guard let fast = json.withUnsafeBufferPointer({ fastPrepare($0, receivedAt: receivedAt, writer: writer) })
        else { return true }
        guard let general = try? generalPrepare(json: json, receivedAt: receivedAt, writer: writer) else {
            return false
        }
        return fast.content == general.content && fast.contentHash == general.contentHash
            && fast.fields == general.fields && fast.org == general.org
            && fast.idempotencyKey == general.idempotencyKey
    }

    /// The slot of `actor.id` (object 0, its schema index).
    private static let actorIDSlot = EntrySchema.actor.members.firstIndex { $0.name == "id" } ?? -1

    static func fastPrepare(
        _ b: UnsafeBufferPointer<UInt8>, receivedAt: Int64, writer: Writer, keys: SubjectKeys? = nil
    ) -> PreparedEntry? {
        // The members' slots on the stack: a heap array of them was a tenth of this function
        // in the daemon.
        guard b.count < Int(UInt32.max) else { return nil }
        return withUnsafeTemporaryAllocation(of: Member?.self, capacity: FastScan.slotCount) { slot in
            slot.initialize(repeating: nil)
            return withUnsafeTemporaryAllocation(of: Member.self, capacity: FastScan.topCapacity) { top in
                withUnsafeTemporaryAllocation(of: Member.self, capacity: FastScan.kidsCapacity) { kids in
                    var sc = Scanner(b, top: top, kids: kids)
                    return fastPrepare(b, receivedAt: receivedAt, writer: writer, keys: keys, scanner: &sc, slot: slot)
                }
            }
        }
    }

    /// `fastPrepare`, with `slot` (all nil) to hold the members by the schema. (Members are
    /// plain data: the temporary allocations need no deinitializing.)
    private static func fastPrepare(
        _ b: UnsafeBufferPointer<UInt8>, receivedAt: Int64, writer: Writer, keys: SubjectKeys?,
        scanner sc: inout Scanner, slot: UnsafeMutableBufferPointer<Member?>
    ) -> PreparedEntry? {
        let n = b.count
        func eqBytes(_ s: Span, _ lit: [UInt8]) -> Bool {
            guard s.count == lit.count else { return false }
            return lit.withUnsafeBufferPointer { l in
                for k in 0..<l.count where b[s.start + k] != l[k] { return false }
                return true
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
            for k in s.start..<s.end where !isIdentifierByte(b[k]) { return false }
            return true
        }
        /// Free text: its length only, as the scanner's strings hold no control byte, 0x7F or
        /// escape (`FastScan.Scanner.string`).
        func text(_ s: Span, max: Int) -> Bool { s.count >= 1 && s.count <= max }
        func str(_ s: Span) -> String {
            String(decoding: UnsafeBufferPointer(rebasing: b[s.start..<s.end]), as: UTF8.self)
        }
        /// `x:y` in one allocation (the index's actor: `type:id`); the spans are ASCII.
        func joined(_ x: Span, _ y: Span) -> String {
            String(unsafeUninitializedCapacity: x.count + 1 + y.count) { out in
                _ = out.initialize(fromContentsOf: b[x.start..<x.end])
                out[x.count] = 0x3A
                _ = out[(x.count + 1)...].initialize(fromContentsOf: b[y.start..<y.end])
                return x.count + 1 + y.count
            }
        }

        sc.ws()
        guard sc.object() else { return nil }
        sc.ws()
        guard sc.i == n else { return nil }
        let top = sc.top

        // Top-level members in canonical order; each slot filled at most once.
        // action actor category idempotency_key metadata occurred_at on_behalf_of org outcome source target
        // Then, in the same array, the members of the nested objects in their schemas' order:
        // actor (id, name, type) from `aB`, on_behalf_of (approval, id, type) from `oB`, target
        // (id, name, type) from `tB`, source (ip, service, session, user_agent) from `sB`.
        let aB = 11
        let oB = aB + EntrySchema.actor.members.count
        let tB = oB + EntrySchema.onBehalfOf.members.count
        let sB = tB + EntrySchema.target.members.count
        guard sB + EntrySchema.source.members.count == slot.count else { return nil }
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
        guard let cat = Category(utf8: UnsafeBufferPointer(rebasing: b[category.value.start..<category.value.end])),
            let out = Outcome(utf8: UnsafeBufferPointer(rebasing: b[outcome.value.start..<outcome.value.end])),
            Timestamp.parse(bytes: UnsafeBufferPointer(rebasing: b[occurred.value.start..<occurred.value.end])) != nil
        else { return nil }
        if let k = slot[3] {
            guard k.kind == .string, text(k.value, max: EntrySchema.idempotencyKey.maxBytes) else { return nil }
        }

        // Nested objects by the schema: its members only, each present unless optional, string
        // values within its limits and alphabet, from its values when it has them.
        func nested(_ m: Member, _ schema: EntrySchema.Object, at base: Int) -> Bool {
            let rows = schema.members
            for c in sc.kids[m.kids] {
                guard c.kind == .string, let j = rows.indices.first(where: { eqBytes(c.key, rows[$0].nameUTF8) }),
                    slot[base + j] == nil,
                    rows[j].identifier ? ident(c.value, max: rows[j].maxBytes) : text(c.value, max: rows[j].maxBytes)
                else { return false }
                if let values = rows[j].valuesUTF8, !values.contains(where: { eqBytes(c.value, $0) }) { return false }
                slot[base + j] = c
            }
            for j in rows.indices where slot[base + j] == nil && !rows[j].optional { return false }
            return true
        }
        guard nested(actor, EntrySchema.actor, at: aB), let actorId = slot[aB], let actorType = slot[aB + 2] else {
            return nil
        }
        let onBehalf = slot[6] != nil
        if let ob = slot[6] {
            guard ob.kind == .object, nested(ob, EntrySchema.onBehalfOf, at: oB) else { return nil }
        } else if eq(actorType.value, "agent") {
            return nil
        }
        guard nested(target, EntrySchema.target, at: tB), nested(source, EntrySchema.source, at: sB) else { return nil }
        if let ip = slot[sB], !IPAddress.isValid(UnsafeBufferPointer(rebasing: b[ip.value.start..<ip.value.end])) {
            return nil
        }
        var meta: [Member] = []
        if let m = slot[4] {
            guard m.kind == .object, m.kids.count <= EntrySchema.maxMetadataKeys else { return nil }
            meta.reserveCapacity(m.kids.count)
            for c in sc.kids[m.kids] {
                guard ident(c.key, max: EntrySchema.maxMetadataKey), c.kind != .object,
                    forbiddenReason(utf8: UnsafeBufferPointer(rebasing: b[c.key.start..<c.key.end])) == nil
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
        // Each commitment's slot: its object (actor 0, on_behalf_of 1, source 2, target 3) << 8 | its
        // schema index. Left empty (no allocation) for a log that does not commit personal fields.
        var slots: [Int] = []
        var made: [Personal.Made] = []
        var rows: [SealedRow] = []
        // `keys` is tested, not bound: binding it copied it, a retain of the store whose header
        // both event loops then wrote on every entry. (Declaring it `borrowing` cost clear
        // entries 3 % and committed ones nothing more.)
        if keys != nil {
            // Called about ten times an entry by the rule: no tuples of arrays to copy, only
            // the schema's few names to compare.
            func objectIndex(_ o: String) -> Int? {
                switch o {
                case "actor": return 0
                case "on_behalf_of": return onBehalf ? 1 : nil
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
                case 0: return slot[aB + j]?.value
                case 1: return onBehalf ? slot[oB + j]?.value : nil
                case 2: return slot[sB + j]?.value
                default: return slot[tB + j]?.value
                }
            }
            // A value is read where it lies (the rule and the commitment need no string of it).
            func member(_ o: String, _ k: String) -> UnsafeRawBufferPointer? {
                guard let i = objectIndex(o), let j = memberIndex(i, k), let v = span(i, j) else { return nil }
                return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(b)[v.start..<v.end])
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
        w.obj(UnsafeBufferPointer(slot), at: aB, EntrySchema.actor, object: 0, made, slots)
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
        if onBehalf {
            w.raw(",\"on_behalf_of\":")
            w.obj(UnsafeBufferPointer(slot), at: oB, EntrySchema.onBehalfOf, object: 1, made, slots)
        }
        w.raw(",\"org\":")
        w.quoted(org.value)
        w.raw(",\"outcome\":")
        w.quoted(outcome.value)
        w.raw(",\"received_at\":\"")
        Timestamp.append(receivedAt, to: &w.o)
        w.o.append(0x22)
        w.raw(",\"source\":")
        w.obj(UnsafeBufferPointer(slot), at: sB, EntrySchema.source, object: 2, made, slots)
        w.raw(",\"target\":")
        w.obj(UnsafeBufferPointer(slot), at: tB, EntrySchema.target, object: 3, made, slots)
        w.raw(",\"writer\":")
        w.o.append(contentsOf: writer.canonical)
        w.raw("}")
        let o = w.o
        guard o.count <= ChainFormat.maxEntrySize else { return nil }
        return PreparedEntry(
            org: str(org.value), content: o, contentHash: SHA256.hash(o), idempotencyKey: slot[3].map { str($0.value) },
            fields: IndexFields(
                time: receivedAt, category: cat, outcome: out, action: str(action.value),
                // The key's string, shared by the subject's entries: one of their own each was no
                // faster through the socket and held 3-8 MB more while segments wait to be sealed.
                actor: slots.firstIndex(of: Self.actorIDSlot).map { rows[made[$0].row].key.actorIndexID }
                    ?? joined(actorType.value, actorId.value)),
            sealedRows: rows)
    }
}
