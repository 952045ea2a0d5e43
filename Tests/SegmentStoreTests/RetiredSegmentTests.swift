import AuditBase
import Foundation
import SegmentStore
import Testing

/// The store learns one neutral fact from its caller: these segments left the directory.
/// It keeps their place, says so on reads, and refuses to open without being told.
@Suite struct RetiredSegmentTests {
    /// Segment 0 (entries 0..<100) sealed, then its file moved out; segment 1 (100..<150) open.
    static func directoryWithSegment0Gone() throws -> String {
        let dir = temporaryDirectory()
        let s = try SegmentStore(directory: dir)
        try s.write(records(100))
        try s.sync()
        try s.rotate()
        #expect(try s.sealRotated().count == 1)
        try s.write(records(50))
        try s.sync()
        try FileManager.default.moveItem(atPath: dir + "/" + SegmentNames.sealed(0), toPath: dir + "/moved-away")
        return dir
    }

    static func retired(_ dir: String) -> RetiredSegment {
        RetiredSegment(
            segment: 0, firstSeq: 0, endSeq: 100, path: dir + "/marker", label: "place-7", hint: "ask for it back")
    }

    @Test func aRetiredSegmentKeepsItsPlaceAndReadsSayWhereItWent() throws {
        let dir = try Self.directoryWithSegment0Gone()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try SegmentStore(directory: dir, readOnly: true, retired: [Self.retired(dir)])
        #expect(s.segments().map(\.state) == [.retired, .open])
        #expect(s.segments().first?.label == "place-7")
        let e = #expect(throws: AuditError.self) { try s.read(seq: 42) }
        #expect(e?.code == .retired)
        #expect(
            e?.description.contains(
                "entries 0..<100 (segment 0) were retired from this directory to place-7; ask for it back") == true,
            "\(e.map(String.init(describing:)) ?? "")")
        #expect(throws: AuditError.self) { try s.scan(from: 0) { _ in true } }
        #expect(try s.read(seq: 120).seq == 120)
        var n = 0
        try s.scan(from: 100) { _ in
            n += 1
            return true
        }
        #expect(n == 50)
    }

    @Test func aCallerThatForgetsARetiredSegmentIsRefusedNotServedALaterStart() throws {
        let dir = try Self.directoryWithSegment0Gone()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for readOnly in [true, false] {
            let e = #expect(throws: AuditError.self) { try SegmentStore(directory: dir, readOnly: readOnly) }
            #expect(
                e?.code == .corrupt && e?.message.contains("segment 0 is missing") == true,
                "\(e.map(String.init(describing:)) ?? "")")
        }
    }

    @Test func aSealedFileBackInPlaceWinsOverItsRetirement() throws {
        let dir = try Self.directoryWithSegment0Gone()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try SegmentStore(directory: dir, retired: [Self.retired(dir)])
        #expect(try s.reinstateReturned().isEmpty)
        try FileManager.default.moveItem(atPath: dir + "/moved-away", toPath: dir + "/" + SegmentNames.sealed(0))
        #expect(try s.reinstateReturned().map(\.segment) == [0])
        #expect(try s.read(seq: 42).seq == 42)
        let again = try SegmentStore(directory: dir, retired: [Self.retired(dir)])
        #expect(again.segments().map(\.state) == [.sealed, .open])
    }
}
