import AuditBase
import Testing

@testable import AuditEntries

/// Validation failure modes: each bad entry is refused with the field and the reason.
@Suite struct EntryTests {
    static let good =
        #"{"org":"org_a","category":"agents","action":"agent.vm.provisioned","actor":{"type":"agent","id":"agt_1"},"on_behalf_of":{"type":"human","id":"usr_9","approval":"apr_3"},"target":{"type":"vm","id":"vm_7"},"outcome":"success","source":{"service":"orchestrator","ip":"10.0.0.1"},"occurred_at":"2025-03-01T00:00:00.158Z","idempotency_key":"k-1","metadata":{"region":"eu-west","cpus":4,"gpu":false}}"#
    let writer = Writer(uid: 1000, gid: 1000, via: "socket")

    func prepare(_ s: String) throws(EntryError) -> PreparedEntry {
        try Entry.prepare(json: Array(s.utf8), receivedAt: 1_740_787_200_500, writer: writer)
    }

    func refusal(_ s: String) -> EntryError? {
        do {
            _ = try prepare(s)
            return nil
        } catch { return error }
    }

    func replacing(_ a: String, _ b: String) -> String { Self.good.replacingOccurrences(of: a, with: b) }

    @Test func goodEntryIsCanonicalisedWithServerFields() throws {
        let e = try prepare(Self.good)
        let text = String(decoding: e.content, as: UTF8.self)
        #expect(
            text.hasPrefix(
                #"{"action":"agent.vm.provisioned","actor":{"id":"agt_1","type":"agent"},"category":"agents","idempotency_key":"k-1","metadata":{"cpus":4,"gpu":false,"region":"eu-west"}"#
            ))
        #expect(text.contains(#""received_at":"2025-03-01T00:00:00.500Z""#))
        #expect(text.hasSuffix(#""writer":{"gid":1000,"uid":1000,"via":"socket"}}"#))
        #expect(e.contentHash == SHA256.hash(e.content))
        #expect(e.org == "org_a")
        #expect(e.fields.category == .agents)
        #expect(e.fields.actor == "agent:agt_1")
        // Whitespace and member order do not change the canonical bytes.
        let shuffled =
            #"{ "outcome" : "success", "org":"org_a","category":"agents","action":"agent.vm.provisioned","actor":{"id":"agt_1","type":"agent"},"on_behalf_of":{"approval":"apr_3","type":"human","id":"usr_9"},"target":{"type":"vm","id":"vm_7"},"source":{"ip":"10.0.0.1","service":"orchestrator"},"occurred_at":"2025-03-01T00:00:00.158Z","idempotency_key":"k-1","metadata":{"gpu":false,"cpus":4,"region":"eu-west"}}"#
        #expect(try prepare(shuffled).content == e.content)
    }

    /// Issue 18 item 21: RFC 3339 (§5.6) lets `T` and `Z` be lower case; `from`, `to` and
    /// `occurred_at` take either, as the spec now says (lower-case `t` was taken, `z` was not).
    @Test func timestampsTakeTAndZInEitherCase() {
        let want = Timestamp.parse("2026-01-02T03:04:05.678Z")
        #expect(want != nil)
        for t in ["2026-01-02t03:04:05.678Z", "2026-01-02T03:04:05.678z", "2026-01-02t03:04:05.678z"] {
            #expect(Timestamp.parse(t) == want, "\(t)")
        }
        #expect(Timestamp.parse("2026-01-02 03:04:05Z") == nil)
        #expect(Timestamp.parse("2026-01-02T03:04:05+00:00") == nil)
    }

    @Test func unknownCategory() {
        #expect(refusal(replacing(#""category":"agents""#, #""category":"robots""#))?.field == "category")
    }
    @Test func missingField() {
        #expect(refusal(replacing(#""outcome":"success","#, ""))?.description == "field 'outcome': is required")
    }
    @Test func agentWithoutAuthority() {
        let e = refusal(replacing(#""on_behalf_of":{"type":"human","id":"usr_9","approval":"apr_3"},"#, ""))
        #expect(e?.field == "on_behalf_of")
    }
    @Test func badActorType() {
        #expect(refusal(replacing(#""type":"agent""#, #""type":"robot""#))?.field == "actor.type")
    }
    @Test func searchQueryTextIsForbidden() {
        let e = refusal(replacing(#""metadata":{"#, #""metadata":{"query_text":"salaries 2025","#))
        #expect(e?.field == "metadata.query_text")
        #expect(e?.message.contains("never be stored") == true)
    }
    @Test func secretValueIsForbidden() {
        #expect(
            refusal(replacing(#""metadata":{"#, #""metadata":{"Password":"hunter2","#))?.field == "metadata.Password")
    }
    @Test func serverFieldsCannotBeSent() {
        #expect(
            refusal(replacing(#""outcome":"success""#, #""outcome":"success","received_at":"2025-01-01T00:00:00Z""#))?
                .field == "received_at")
    }
    @Test func unknownTopLevelField() {
        #expect(refusal(replacing(#""outcome":"success""#, #""outcome":"success","extra":1"#))?.field == "extra")
    }
    @Test func floatingPointIsRefused() {
        #expect(refusal(replacing(#""cpus":4"#, #""cpus":4.5"#))?.message.contains("floating-point") == true)
    }
    @Test func badTimestamp() {
        #expect(refusal(replacing("2025-03-01T00:00:00.158Z", "2025-02-30T00:00:00Z"))?.field == "occurred_at")
        #expect(refusal(replacing("2025-03-01T00:00:00.158Z", "2025-03-01T00:00:00+01:00"))?.field == "occurred_at")
    }
    @Test func invalidUTF8IsRefused() {
        var bytes = Array(Self.good.utf8)
        let i = bytes.firstIndex(of: UInt8(ascii: "e"))!  // inside "region"'s value region
        bytes[i] = 0xC3
        bytes.insert(0x28, at: i + 1)
        #expect(throws: EntryError.self) { try Entry.prepare(json: bytes, receivedAt: 0, writer: writer) }
    }
    @Test func malformedJSON() {
        for bad in [
            "", "{", "[]", "{\"org\":}", #"{"org":"a","org":"b"}"#, "{\"a\":\"\u{01}\"}", #"{"a":"\ud800"}"#, "nul",
        ] {
            #expect(throws: EntryError.self, "\(bad)") { try prepare(bad) }
        }
    }
    @Test func oversizedEntry() {
        let big = String(repeating: "x", count: 1000)
        var meta = ""
        for i in 0..<20 { meta += "\"k\(i)\":\"\(big)\"," }
        let e = refusal(replacing(#""metadata":{"#, #""metadata":{"# + meta))
        #expect(e?.message.contains("limit") == true)
        #expect(refusal(String(repeating: " ", count: 70_000) + Self.good)?.message.contains("limit") == true)
    }
    /// Issue 7 D14: control characters are refused in metadata values and arrays too,
    /// whether escaped (general path) or raw (fast path).
    @Test(arguments: [#"\u0000"#, #"\u001b[31m"#, #"a\nb"#, "\u{7f}", #"\u007f"#, #"\t"#])
    func controlCharactersInMetadataAreRefused(text: String) {
        #expect(
            refusal(replacing(#""region":"eu-west""#, #""region":"eu\#(text)west""#))?.field == "metadata.region",
            "\(text)")
        #expect(refusal(replacing(#""cpus":4"#, #""cpus":["ok","x\#(text)"]"#))?.field == "metadata.cpus[1]", "\(text)")
    }

    @Test(arguments: [
        "cafe", "999.999.999.999", ":::::", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1::2::3", "12345::1", "::1::",
        "1.2.3.4:80", "fe80::1%eth0", "g::1", ":1", "1:",
    ])
    func malformedSourceIPIsRefused(ip: String) {
        #expect(refusal(replacing(#""ip":"10.0.0.1""#, #""ip":"\#(ip)""#))?.field == "source.ip", "\(ip)")
    }

    @Test(arguments: [
        "0.0.0.0", "255.255.255.255", "192.0.2.1", "::", "::1", "1::", "2001:db8::8a2e:370:7334",
        "2001:DB8:0:0:0:0:0:1", "::ffff:192.0.2.1", "64:ff9b::192.0.2.33", "1:2:3:4:5:6:7:8",
    ])
    func wellFormedSourceIPIsAccepted(ip: String) throws {
        _ = try prepare(replacing(#""ip":"10.0.0.1""#, #""ip":"\#(ip)""#))
    }

    @Test func nestedMetadataObjectIsRefused() {
        #expect(refusal(replacing(#""cpus":4"#, #""cpus":{"n":4}"#))?.field == "metadata.cpus")
    }
    @Test func timestampsRoundTrip() {
        for ms: Int64 in [0, 1_740_787_200_158, 951_782_400_000, 4_102_444_799_999] {
            #expect(Timestamp.parse(Timestamp.format(ms)) == ms)
        }
    }
    @Test func canonicalEscaping() throws {
        #expect(CanonicalJSON.encode(.string("a\"b\\c\n\u{01}é")) == Array(#""a\"b\\c\n\u0001é""#.utf8))
        #expect(try JSONParser.parse(Array(#""\u00e9\ud83d\ude00""#.utf8)) == .string("é😀"))
    }
}
