import Testing

@testable import AuditEntries

/// The fast path must never accept what the general path refuses, and must produce the same
/// canonical bytes when it accepts.
@Suite struct FastPathTests {
    let writer = Writer(uid: 7, gid: 8, via: "socket")

    func variants() -> [String] {
        var out: [String] = []
        let actors = [
            #"{"type":"human","id":"usr_1"}"#, #"{"id":"svc_9","type":"service","name":"Billing Bot"}"#,
            #"{"type":"agent","id":"agt_2"}"#, #"{"type":"robot","id":"x"}"#, #"{"type":"human","id":""}"#,
            #"{"type":"human","id":"a","extra":1}"#, #"{"type":"human","id":{"x":1}}"#,
        ]
        let behalf = [
            "", #","on_behalf_of":{"type":"human","id":"usr_1"}"#,
            #","on_behalf_of":{"approval":"apr_1","type":"policy","id":"pol_2"}"#,
            #","on_behalf_of":{"type":"god","id":"x"}"#,
        ]
        let metas = [
            "", #","metadata":{}"#, #","metadata":{"b":1,"a":"x","c":true,"d":null,"e":-42}"#,
            #","metadata":{"n":9007199254740993}"#, #","metadata":{"f":1.5}"#,
            #","metadata":{"list":[1,2]}"#, #","metadata":{"q":"tab\there"}"#, #","metadata":{"query_text":"x"}"#,
            #","metadata":{"a":1,"a":2}"#,
            #","metadata":{"u":"caf\u00e9"}"#, #","metadata":{"raw":"café"}"#, #","metadata":{"z":-0}"#,
            #","metadata":{"lead":007}"#,
        ]
        let sources = [
            #"{"service":"sso","ip":"10.0.0.1"}"#, #"{"service":"a b"}"#,
            #"{"user_agent":"Mozilla/5.0 (X11)","service":"web","session":"s1"}"#, #"{"service":"x","ip":"nope!"}"#,
        ]
        let keys = ["", #","idempotency_key":"k-1""#, #","idempotency_key":"""#]
        var n = 0
        for a in actors {
            for ob in behalf {
                for m in metas {
                    for s in sources {
                        for k in keys {
                            n += 1
                            let ws = n % 3 == 0 ? " " : ""
                            out.append(
                                #"{"org":"org_\#(n % 4)","category":"\#(n % 11 == 0 ? "nope" : "access")",\#(ws)"action":"access.granted","actor":\#(a)\#(ob),"target":{"type":"project","id":"p\#(n)"},"outcome":"\#(n % 13 == 0 ? "maybe" : "denied")","source":\#(s),"occurred_at":"\#(n % 17 == 0 ? "2025-13-01T00:00:00Z" : "2025-03-01T00:00:00.5Z")"\#(k)\#(m)}"#
                            )
                        }
                    }
                }
            }
        }
        // Member order, whitespace, and server fields.
        out.append(
            #" { "outcome":"success" , "source":{"service":"s"}, "org":"o","category":"files","target":{"id":"t","type":"file"},"actor":{"id":"u","type":"human"},"action":"files.viewed","occurred_at":"2025-03-01T00:00:00Z" } "#
        )
        out.append(
            #"{"org":"o","category":"files","action":"a","actor":{"type":"human","id":"u"},"target":{"type":"t","id":"t"},"outcome":"success","source":{"service":"s"},"occurred_at":"2025-03-01T00:00:00Z","received_at":"2025-03-01T00:00:00Z"}"#
        )
        out.append(
            #"{"org":"o","category":"files","action":"a","actor":{"type":"human","id":"u"},"target":{"type":"t","id":"t"},"outcome":"success","source":{"service":"s"},"occurred_at":"2025-03-01T00:00:00Z"} x"#
        )
        return out
    }

    @Test func fastPathAgreesWithTheGeneralPath() {
        var fast = 0
        var accepted = 0
        for v in variants() {
            let bytes = Array(v.utf8)
            let f = bytes.withUnsafeBufferPointer {
                Entry.fastPrepare($0, receivedAt: 1_740_787_200_123, writer: writer)
            }
            let g: PreparedEntry?
            do { g = try Entry.generalPrepare(json: bytes, receivedAt: 1_740_787_200_123, writer: writer) } catch {
                g = nil
            }
            if g != nil { accepted += 1 }
            if let f {
                fast += 1
                #expect(g != nil, "fast path accepted what the general path refuses: \(v)")
                #expect(f.content == g?.content, "\(v)")
                #expect(
                    f.fields == g?.fields && f.org == g?.org && f.idempotencyKey == g?.idempotencyKey
                        && f.contentHash == g?.contentHash)
            }
        }
        #expect(
            fast >= 60 && accepted >= fast, "the fast path should take the common shapes (\(fast) of \(accepted) valid)"
        )
    }

    @Test func theSpecVectorsTakeTheFastPath() throws {
        for s in SpecVectorTests.inputs {
            let b = Array(s.utf8)
            let f = b.withUnsafeBufferPointer { Entry.fastPrepare($0, receivedAt: 1, writer: writer) }
            #expect(f != nil)
            #expect(f?.content == (try Entry.generalPrepare(json: b, receivedAt: 1, writer: writer)).content)
        }
    }

    /// The identifier alphabet's bit masks (`Entry.isIdentifierByte`) hold exactly
    /// `[A-Za-z0-9_.:@/-]` (format-spec.md §4), for every byte.
    @Test func identifierBytesAreTheSpecsAlphabet() {
        let alphabet = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:@/-".utf8)
        for c in UInt8.min...UInt8.max {
            #expect(Entry.isIdentifierByte(c) == alphabet.contains(c), "byte \(c)")
        }
    }

    /// The largest entry the schema allows (every optional member, 32 metadata keys) fits the
    /// scanner's room on the stack and takes the fast path; one more metadata key is the general
    /// parser's to refuse.
    @Test func theLargestValidShapeTakesTheFastPath() throws {
        func entry(metadataKeys: Int) -> [UInt8] {
            let meta = (0..<metadataKeys).map { #""k\#($0)":"v""# }.joined(separator: ",")
            return Array(
                #"{"org":"o","category":"access","action":"a.b","actor":{"type":"agent","id":"agt_1","name":"Bot"},"on_behalf_of":{"approval":"apr_1","type":"human","id":"usr_1"},"target":{"type":"t","id":"t1","name":"T"},"outcome":"success","source":{"ip":"10.0.0.1","service":"s","session":"x","user_agent":"ua"},"occurred_at":"2025-03-01T00:00:00Z","idempotency_key":"k","metadata":{\#(meta)}}"#
                    .utf8)
        }
        let largest = entry(metadataKeys: EntrySchema.maxMetadataKeys)
        let fast = largest.withUnsafeBufferPointer { Entry.fastPrepare($0, receivedAt: 1, writer: writer) }
        #expect(fast != nil, "the fast path declined the largest valid entry")
        #expect(fast?.content == (try Entry.generalPrepare(json: largest, receivedAt: 1, writer: writer)).content)
        let over = entry(metadataKeys: EntrySchema.maxMetadataKeys + 1)
        #expect(over.withUnsafeBufferPointer { Entry.fastPrepare($0, receivedAt: 1, writer: writer) } == nil)
        #expect(throws: (any Error).self) { try Entry.generalPrepare(json: over, receivedAt: 1, writer: writer) }
    }

    /// The scanner's rooms stay within the 1 KiB `withUnsafeTemporaryAllocation` puts on the
    /// stack (above it, each entry costs a posix_memalign and a free on the event loop).
    @Test func theScannersRoomsFitOnTheStack() {
        typealias S = Entry.FastScan
        #expect(MemoryLayout<S.Member?>.stride * S.slotCount <= 1024)
        #expect(MemoryLayout<S.Member>.stride * S.topCapacity <= 1024)
        #expect(MemoryLayout<S.Member>.stride * S.kidsCapacity <= 1024)
    }
}
