import AuditBase
import Foundation
import Testing

@testable import AuditEntries

/// The one-pass scanner of stored index fields answers exactly what the full parser answers
/// (or defers to it), on realistic entries and on the shapes that could trip a scanner.
@Suite struct StoredFieldsTests {
    func prepared(_ json: String) throws -> [UInt8] {
        try Entry.prepare(
            json: Array(json.utf8), receivedAt: 1_740_787_200_123, writer: Writer(uid: 1, gid: 2, via: "socket")
        ).content
    }

    @Test func theScannerAgreesWithTheParser() throws {
        var contents: [[UInt8]] = (0..<500).map { i in
            (try? prepared(String(decoding: Sample.json(org: "org_\(i % 11)", i: i), as: UTF8.self))) ?? []
        }
        // Shapes a scanner could get wrong: look-alike keys in metadata and nested objects,
        // escapes in the fields it returns and in the ones it skips, arrays, numbers, nulls.
        let tricky = [
            #"{"org":"o","category":"access","action":"a","actor":{"type":"human","id":"u"},"target":{"type":"t","id":"1","name":"q\"\\ x"},"outcome":"success","source":{"service":"s","user_agent":"ua \"x\""},"occurred_at":"2025-03-01T00:00:00.000Z"}"#,
            #"{"org":"o","category":"access","action":"a.b","actor":{"type":"human","id":"u\"v","name":"\\"},"target":{"type":"t","id":"1"},"outcome":"success","source":{"service":"s"},"occurred_at":"2025-03-01T00:00:00.000Z"}"#,
            #"{"org":"o","category":"files","action":"x.y","actor":{"id":"u","name":"N \"q\" {}","type":"agent"},"on_behalf_of":{"type":"human","id":"h"},"target":{"type":"t","id":"1","name":"},{\"org\":\"evil\""},"outcome":"denied","source":{"service":"s","ip":"10.0.0.1"},"occurred_at":"2025-03-01T00:00:00.000Z","metadata":{"actor":"m","org":"fake","category":"billing","list":[1,2,"x\"]"],"n":null,"b":true,"received_at":"2020-01-01T00:00:00.000Z"}}"#,
        ]
        for t in tricky { contents.append(try prepared(t)) }
        let interner = StringInterner(slots: 16)
        for c in contents {
            let parsed = Entry.parsedIndexFields(ofStored: c)
            #expect(parsed != nil)
            if let scanned = Entry.scanIndexFields(c) {
                #expect(
                    scanned.org == parsed?.org && scanned.fields == parsed?.fields,
                    "\(String(decoding: c, as: UTF8.self))")
            }
            #expect(
                Entry.indexFields(ofStored: c).map { "\($0.org) \($0.fields)" }
                    == parsed.map { "\($0.org) \($0.fields)" })
            // Through a small interner (collisions included), the same fields.
            let interned = c.withUnsafeBufferPointer { Entry.storedFields(ofStored: $0, interner: interner) }
            #expect(interned.map { "\($0.org) \($0.fields)" } == parsed.map { "\($0.org) \($0.fields)" })
        }
        // Realistic entries take the fast path.
        #expect(contents.prefix(500).allSatisfy { Entry.scanIndexFields($0) != nil })
        // Bytes that are not a whole object: no answer, never a wrong one.
        for c in contents.suffix(3) {
            for cut in [1, c.count / 2, c.count - 1] { #expect(Entry.scanIndexFields(Array(c.prefix(cut))) == nil) }
        }
    }

    /// Objects that are not canonical, at the top level or in `actor`, are never answered by
    /// the scanner: a trailing or doubled comma, a missing colon, a repeated field, a key that
    /// is not a plain string, bytes after the end. The parser decides them.
    @Test func shapesThatAreNotCanonicalAreLeftToTheParser() throws {
        let good = try prepared(
            #"{"org":"o","category":"access","action":"a","actor":{"type":"human","id":"u"},"target":{"type":"t","id":"1"},"outcome":"success","source":{"service":"s"},"occurred_at":"2025-03-01T00:00:00.000Z"}"#
        )
        let text = String(decoding: good, as: UTF8.self)
        #expect(Entry.scanIndexFields(good) != nil)
        func edited(_ from: String, _ to: String) -> [UInt8] {
            Array(text.replacingOccurrences(of: from, with: to).utf8)
        }
        let bad: [[UInt8]] = [
            edited(#""id":"u","type":"human"}"#, #""id":"u","type":"human",}"#),
            edited(#""id":"u","type":"human"}"#, #""id":"u",,"type":"human"}"#),
            edited(#""type":"human""#, #""type""human""#),
            edited(#""id":"u","type":"human"}"#, #""id":"u","type":"human","id":"v"}"#),
            edited(#""outcome":"success""#, #""outcome":"success","org":"p""#),
            edited(#"{"action""#, #"{"action":"b","action""#),
            edited(#""category":"access""#, #""category":"access",}"#),
            edited(#""category":"#, #"category:"#),
            edited(#""category":"access""#, #""cat\u0065gory":"access""#),
            Array((text + " ").utf8),
            Array((text + "}").utf8),
            Array(("{}").utf8),
            Array(("{").utf8),
            [],
        ]
        for b in bad {
            #expect(b != good, "an edit that did not apply")
            #expect(Entry.scanIndexFields(b) == nil, "\(String(decoding: b, as: UTF8.self))")
            #expect(Entry.storedFieldScannerAgrees(b))
        }
    }

    /// Whether an entry may hold a commitment, answered by the scanner on the way, is exactly
    /// what a search of the whole entry for a commitment's opening answers.
    @Test func theScannerFindsCommitmentsWhereverTheyAre() throws {
        let c = String(repeating: "A", count: 43)
        let t = String(repeating: "Q", count: 21) + "A"
        let commitment = #"{"$c":"\#(c)","$s":"\#(t)"}"#
        func entry(actorId: String = #""u""#, metadata: String = "{}", agent: String = #""ua""#) -> [UInt8] {
            Array(
                (#"{"action":"a.b","actor":{"id":\#(actorId),"type":"human"},"category":"access","metadata":\#(metadata),"#
                    + #""occurred_at":"2025-03-01T00:00:00.000Z","org":"o","outcome":"success","#
                    + #""received_at":"2025-03-01T00:00:00.123Z","source":{"service":"s","user_agent":\#(agent)}}"#)
                    .utf8)
        }
        let cases: [([UInt8], Bool)] = [
            (entry(), false),
            (entry(actorId: commitment), true),
            (entry(metadata: #"{"k":\#(commitment)}"#), true),
            (entry(metadata: #"{"list":[1,\#(commitment)]}"#), true),
            (entry(agent: commitment), true),
            // The look-alike inside a string is escaped: not a commitment.
            (entry(metadata: #"{"k":"{\"$c\":\"x\"}"}"#), false),
            (entry(metadata: #"{"$d":"x"}"#), false),
        ]
        for (bytes, expected) in cases {
            let text = String(decoding: bytes, as: UTF8.self)
            let scanned = try #require(bytes.withUnsafeBufferPointer { Entry.scanStoredFields($0) }, "\(text)")
            #expect(scanned.mayHoldCommitments == expected, "\(text)")
            #expect(Personal.mayHoldCommitments(bytes) == expected, "\(text)")
            #expect(bytes.withUnsafeBufferPointer { Entry.storedFields(ofStored: $0)?.mayHoldCommitments } == expected)
            #expect(Entry.storedFieldScannerAgrees(bytes))
        }
    }

    @Test func categoriesAndOutcomesAreReadFromTheirBytes() {
        for c in Category.allCases {
            #expect(Array(c.rawValue.utf8).withUnsafeBufferPointer { Category(utf8: $0) } == c)
        }
        for o in Outcome.allCases {
            #expect(Array(o.rawValue.utf8).withUnsafeBufferPointer { Outcome(utf8: $0) } == o)
        }
        for bad in ["", "acces", "accessx", "Success", "org_setting"] {
            #expect(Array(bad.utf8).withUnsafeBufferPointer { Category(utf8: $0) } == nil)
            #expect(Array(bad.utf8).withUnsafeBufferPointer { Outcome(utf8: $0) } == nil)
        }
    }
}
