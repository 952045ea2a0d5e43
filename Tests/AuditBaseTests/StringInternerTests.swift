import Testing

@testable import AuditBase

/// The same bytes give back the same string, whatever else went through the table, and a
/// string is always exactly its bytes.
@Suite struct StringInternerTests {
    func string(_ t: StringInterner, _ parts: String...) -> String {
        let bytes = parts.map { Array($0.utf8) }
        return bytes[0].withUnsafeBufferPointer { a in
            bytes.count > 1
                ? bytes[1].withUnsafeBufferPointer { b in
                    bytes.count > 2 ? bytes[2].withUnsafeBufferPointer { c in t.string(a, b, c) } : t.string(a, b)
                }
                : t.string(a)
        }
    }

    @Test func stringsAreTheirBytesThroughCollisionsAndReuse() {
        // Eight slots for a thousand strings: most lookups collide and replace.
        let t = StringInterner(slots: 8)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let k = Int.random(in: 0..<1000, using: &rng)
            let a = "action.\(k % 37).created"
            let id = "usr_\(k)"
            #expect(string(t, a) == a)
            #expect(string(t, "human", ":", id) == "human:" + id)
            #expect(string(t, "human", ":$s:", id) == "human:$s:" + id)
            #expect(string(t, "", "", "") == "")
        }
    }

    @Test func theSameBytesGiveTheSameStorage() {
        let t = StringInterner()
        let long = "monitoring.export.created"
        var first = string(t, long)
        var again = string(t, long)
        let p1 = first.withUTF8 { $0.baseAddress }
        let p2 = again.withUTF8 { $0.baseAddress }
        #expect(p1 == p2)
        // A string made of other parts with the same bytes is the same string.
        var split = string(t, "monitoring", ".export", ".created")
        #expect(split == long)
        #expect(split.withUTF8 { $0.baseAddress } == p1)
        let joined = Array("type".utf8).withUnsafeBufferPointer { a in
            Array(":".utf8).withUnsafeBufferPointer { b in
                Array("id".utf8).withUnsafeBufferPointer { c in StringInterner.joined(a, b, c) }
            }
        }
        #expect(joined == "type:id")
    }
}
