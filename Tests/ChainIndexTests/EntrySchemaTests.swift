import AuditEntries
import Foundation
import Testing

/// `EntrySchema` is format-spec §4's table: every row's limit, alphabet and values are the
/// spec's, and both validators hold to them.
@Suite struct EntrySchemaTests {
    /// §4's table: member → its rule text.
    static func specRows() throws -> [String: String] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let spec = try String(contentsOf: root.appendingPathComponent("format-spec.md"), encoding: .utf8)
        guard let start = spec.range(of: "## 4. Entry input"),
            let end = spec.range(of: "## 5. Entries", range: start.upperBound..<spec.endIndex)
        else {
            throw CocoaError(.fileReadCorruptFile)
        }
        var rows: [String: String] = [:]
        for line in spec[start.upperBound..<end.lowerBound].split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            if cells.count >= 3 { rows[cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))] = cells[2] }
        }
        return rows
    }

    /// What the spec must say of `t`: its length, its alphabet, its values. A nested member's
    /// words are those after its name up to the next member's.
    static func check(_ t: EntrySchema.Text, in rule: String, nested: Bool) -> [String] {
        var words = rule
        if nested {
            guard let r = rule.range(of: "`\(t.name)`") else { return ["`\(t.name)`"] }
            words = String(rule[r.upperBound...].prefix { $0 != "`" })
        }
        var missing: [String] = []
        // Enumerations are bounded by their values; everything else states its length.
        if t.values == nil && !words.contains("1–\(t.maxBytes)") && !words.contains("≤ \(t.maxBytes)") {
            missing.append("\(t.name): at most \(t.maxBytes) bytes")
        }
        if t.identifier && !words.contains("identifier set") && !words.contains("[A-Za-z0-9_.:@/-]") {
            missing.append("\(t.name): identifier set")
        }
        for v in t.values ?? [] where !rule.contains(v) { missing.append("\(t.name): value \(v)") }
        if t.optional && nested
            && !(rule.range(of: "optional").map { rule[$0.lowerBound...].contains("`\(t.name)`") } ?? false)
        {
            missing.append("\(t.name): optional")
        }
        return missing
    }

    @Test func everyRowIsTheSpecs() throws {
        let rows = try Self.specRows()
        #expect(
            Set(rows.keys) == Set(EntrySchema.inputMembers),
            "§4 lists \(rows.keys.sorted()), the schema \(EntrySchema.inputMembers.sorted())")
        for t in [
            EntrySchema.org, EntrySchema.category, EntrySchema.action, EntrySchema.outcome, EntrySchema.occurredAt,
            EntrySchema.idempotencyKey,
        ] {
            let missing = Self.check(t, in: rows[t.name] ?? "", nested: false)
            #expect(missing.isEmpty, "§4's row for \(t.name) does not say \(missing): \(rows[t.name] ?? "no row")")
        }
        for o in [EntrySchema.actor, EntrySchema.onBehalfOf, EntrySchema.target, EntrySchema.source] {
            #expect(o.names == o.names.sorted(), "\(o.name)'s members must be in canonical (sorted) order")
            for t in o.members {
                let missing = Self.check(t, in: rows[o.name] ?? "", nested: true)
                #expect(missing.isEmpty, "§4's row for \(o.name) does not say \(missing): \(rows[o.name] ?? "no row")")
            }
        }
        let meta = rows["metadata"] ?? ""
        for phrase in [
            "≤ \(EntrySchema.maxMetadataKeys) members", "keys 1–\(EntrySchema.maxMetadataKey)",
            "≤ \(EntrySchema.maxMetadataString) bytes", "arrays (≤ \(EntrySchema.maxMetadataArray))",
        ] {
            #expect(meta.contains(phrase), "§4's metadata row does not say \(phrase)")
        }
    }

    /// Each limit, one byte over, is refused by the general validator and not taken by the fast path.
    @Test func bothValidatorsHoldEveryLimit() throws {
        let writer = Writer(uid: 1, gid: 1, via: "test")
        func entry(_ edit: (inout [String: Any]) -> Void) throws -> [UInt8] {
            var e: [String: Any] = [
                "org": "org_a", "category": "access", "action": "access.granted", "outcome": "success",
                "actor": ["type": "human", "id": "u1"], "target": ["type": "doc", "id": "d1"],
                "source": ["service": "svc"],
                "occurred_at": "2025-03-01T00:00:00.000Z",
            ]
            edit(&e)
            return Array(try JSONSerialization.data(withJSONObject: e, options: [.sortedKeys]))
        }
        _ = try Entry.prepare(json: try entry { _ in }, receivedAt: 0, writer: writer)
        var cases: [(String, [UInt8])] = []
        for t in [EntrySchema.org, EntrySchema.action, EntrySchema.idempotencyKey] {
            cases.append((t.name, try entry { $0[t.name] = String(repeating: "a", count: t.maxBytes + 1) }))
        }
        for o in [EntrySchema.actor, EntrySchema.target, EntrySchema.source] {
            for t in o.members where t.values == nil && t.name != "ip" {
                cases.append(
                    (
                        "\(o.name).\(t.name)",
                        try entry {
                            var obj = $0[o.name] as? [String: String] ?? [:]
                            obj[t.name] = String(repeating: "a", count: t.maxBytes + 1)
                            $0[o.name] = obj
                        }
                    ))
            }
        }
        for (field, json) in cases {
            #expect(throws: EntryError.self, "\(field) one byte over its limit") {
                try Entry.prepare(json: json, receivedAt: 0, writer: writer)
            }
        }
        #expect(cases.count >= 11)
    }
}
