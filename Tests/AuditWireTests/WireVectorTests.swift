import AuditWire
import Foundation
import Testing

/// The spec's wire vectors (format-spec.md §9.1), read from the spec itself: every frame the
/// codec speaks encodes and decodes to exactly those bytes. The Go and Python clients' tests
/// read the same lines.
@Suite struct WireVectorTests {
    static let spec = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("format-spec.md")

    /// Name (`APPEND`, `ACK`, ...) to bytes, for every `wire-vector` line of the spec.
    static func vectors() throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for line in try String(contentsOf: spec, encoding: .utf8).split(separator: "\n")
        where line.hasPrefix("wire-vector ") {
            guard let colon = line.range(of: ": ", options: .backwards) else { continue }
            let name = String(line.split(separator: " ")[1])
            let hex = line[colon.upperBound...].filter { $0 != " " }
            var bytes: [UInt8] = []
            var i = hex.startIndex
            while i < hex.endIndex, let j = hex.index(i, offsetBy: 2, limitedBy: hex.endIndex),
                let b = UInt8(hex[i..<j], radix: 16)
            {
                bytes.append(b)
                i = j
            }
            #expect(bytes.count * 2 == hex.count, "wire-vector \(name): not hex")
            out[name] = bytes
        }
        return out
    }

    /// The one frame in `bytes`.
    func frame(_ bytes: [UInt8]) throws -> Frame {
        var buffer = bytes
        var p = FrameParser()
        let items = p.parse(&buffer)
        #expect(buffer.isEmpty)
        guard items.count == 1, case .frame(let f) = items[0] else {
            throw WireError(code: .malformedFrame, message: "not one frame: \(items)")
        }
        return f
    }

    @Test func everyVectorIsInTheSpec() throws {
        #expect(try Self.vectors().keys.sorted() == ["ACK", "APPEND", "CHECKPOINT", "ERROR", "PING"])
    }

    @Test func requestsEncodeToTheSpecsBytes() throws {
        let v = try Self.vectors()
        #expect(Frame(type: .append, id: 1, body: Array("{}".utf8)).encoded == v["APPEND"])
        #expect(Frame(type: .ping, id: 4).encoded == v["PING"])
        #expect(
            Frame(type: .checkpoint, id: 3, body: CheckpointRequest(old: 7, cosigned: true).body).encoded
                == v["CHECKPOINT"])
        let c = try frame(try #require(v["CHECKPOINT"]))
        #expect(CheckpointRequest(body: c.body) == CheckpointRequest(old: 7, cosigned: true))
    }

    @Test func repliesDecodeFromTheSpecsBytes() throws {
        let v = try Self.vectors()
        let a = try frame(try #require(v["ACK"]))
        #expect(a.type == FrameType.ack.rawValue && a.id == 2)
        let ack = try #require(Ack(body: a.body))
        #expect(ack.seq == 5 && ack.orgSeq == 3 && ack.hash == Array(0..<32) && !ack.duplicate)
        #expect(Frame.ack(id: 2, seq: 5, orgSeq: 3, hash: Array(0..<32), duplicate: false).encoded == v["ACK"])
        // The daemon's writer, into a buffer with room to spare: the same bytes, and nothing after.
        var wire = [UInt8](repeating: 0xEE, count: Frame.ackFrameSize + 3)
        let n = Array(UInt8(0)..<32).withUnsafeBytes { h in
            wire.withUnsafeMutableBytes {
                Frame.writeAck(id: 2, seq: 5, orgSeq: 3, hash: h, duplicate: false, into: $0)
            }
        }
        #expect(n == Frame.ackFrameSize && Array(wire[..<n]) == v["ACK"] && wire[n...].allSatisfy { $0 == 0xEE })
        #expect(
            [UInt8](repeating: 0, count: Frame.ackFrameSize - 1).withUnsafeBytes { h in
                var short = [UInt8](repeating: 0, count: Frame.ackFrameSize - 1)
                return short.withUnsafeMutableBytes {
                    Frame.writeAck(id: 2, seq: 5, orgSeq: 3, hash: h, duplicate: true, into: $0)
                }
            } == 0, "a buffer too small for the frame is left alone")
        let e = try frame(try #require(v["ERROR"]))
        #expect(e.type == FrameType.error.rawValue && e.id == 1)
        #expect(WireError(body: e.body) == WireError(code: .invalidEntry, message: "field 'org': is required"))
        #expect(Frame.error(id: 1, code: .invalidEntry, message: "field 'org': is required").encoded == v["ERROR"])
    }

    @Test func malformedCheckpointRequestsAreRefused() {
        #expect(CheckpointRequest(body: []) == nil)
        #expect(CheckpointRequest(body: Array(repeating: 0, count: 9) + [0]) == nil)
        #expect(CheckpointRequest(body: Array(repeating: 0, count: 8) + [4]) == nil)
        #expect(CheckpointRequest(body: Array(repeating: 0, count: 8)) == CheckpointRequest(old: 0))
        // Flags bit 1 asks for the key successions (format-spec §8.8), with or without bit 0.
        #expect(
            CheckpointRequest(body: Array(repeating: 0, count: 8) + [3])
                == CheckpointRequest(old: 0, cosigned: true, successions: true))
        #expect(CheckpointRequest(old: 7, successions: true).body == [7, 0, 0, 0, 0, 0, 0, 0, 2])
    }

    /// A CHECKPOINT_REPLY carries the statements after the proof only when there are any; one
    /// whose statements run past the frame, or that has bytes after them, is refused.
    @Test func checkpointRepliesCarryKeySuccessionsWhenThereAreAny() {
        let plain = CheckpointReply(note: "n\n", proof: [Array(repeating: 1, count: 32)])
        #expect(plain.body.count == 4 + 2 + 1 + 32)
        #expect(CheckpointReply(body: plain.body) == plain)
        let with = CheckpointReply(note: "n\n", proof: [], successions: ["a\n\n— x y\n", "b"])
        #expect(with.body == [2, 0, 0, 0, 0x6e, 0x0a, 0, 2, 11, 0] + Array("a\n\n— x y\n".utf8) + [1, 0, 0x62])
        #expect(CheckpointReply(body: with.body) == with)
        #expect(CheckpointReply(body: with.body.dropLast()) == nil)
        #expect(CheckpointReply(body: with.body + [0]) == nil)
    }
}

/// Frames read where the transport put them (`parse(_:after:)`) are the frames read from one
/// buffer, wherever the stream is cut, oversize frames and their skipping included.
@Suite struct FrameParserSplitTests {
    static func stream() -> [UInt8] {
        var s: [UInt8] = []
        for i in 0..<20 {
            s += Frame(type: .append, id: UInt64(i + 1), body: Array(repeating: UInt8(i), count: i * 7)).encoded
            if i == 9 {
                // A frame just above the body limit (its bytes are skipped), then more frames.
                s += Frame(type: .append, id: 99, body: Array(repeating: 1, count: 300)).encoded
            }
        }
        return s
    }

    func whole(_ s: [UInt8]) -> [FrameParser.Item] {
        var p = FrameParser(maxBody: 256)
        var b = s
        let items = p.parse(&b)
        #expect(b.isEmpty)
        return items
    }

    @Test func everyCutGivesTheSameItems() {
        let s = Self.stream()
        let want = whole(s)
        #expect(want.count == 21)
        for cut in stride(from: 0, through: s.count, by: 3) {
            for second in [cut, min(s.count, cut + 1), min(s.count, cut + 40), min(s.count, cut + 500)] {
                var p = FrameParser(maxBody: 256)
                var leftover: [UInt8] = []
                var got: [FrameParser.Item] = []
                for (a, b) in [(0, cut), (cut, second), (second, s.count)] where b > a {
                    got += s[a..<b].withUnsafeBytes { p.parse($0, after: &leftover) }
                }
                #expect(got == want, "cut at \(cut) and \(second)")
                #expect(leftover.isEmpty)
            }
        }
    }

    @Test func aFatalLengthStopsTheStream() {
        var p = FrameParser()
        var leftover: [UInt8] = []
        let bad: [UInt8] = [3, 0, 0, 0] + Array(repeating: 0, count: 20)
        let items = bad.withUnsafeBytes { p.parse($0, after: &leftover) }
        guard case .fatal = items.last else {
            Issue.record("a length below 9 must end the stream: \(items)")
            return
        }
        #expect(leftover.isEmpty)
    }
}
