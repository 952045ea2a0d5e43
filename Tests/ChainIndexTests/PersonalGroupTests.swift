import AuditBase
import Foundation
import LogProofs
import PersonalStore
import TestSupport
import Testing
import Verification

@testable import AuditEntries
@testable import ChainIndex

/// One commitment a subject (format-spec.md §5.4.1, format 3): how committed fields group, and
/// that a log written a commitment a field (format 2) still opens, verifies and erases.
@Suite struct PersonalGroupTests {
    static let tagA = SubjectTag(digest: SHA256.hash(Array("a".utf8)))
    static let tagB = SubjectTag(digest: SHA256.hash(Array("b".utf8)))

    static func field(_ path: String, _ tag: SubjectTag, head: Bool) -> Personal.Committed {
        Personal.Committed(path: path, commitment: head ? SHA256.hash(Array(path.utf8)) : nil, tag: tag)
    }

    @Test func fieldsGroupByTheirSubjectUnderOneHead() throws {
        let a = Self.tagA
        let b = Self.tagB
        // Format 3: one head per subject, first in path order; format 2: every field a head.
        let three = try #require(
            Personal.groups([
                Self.field("actor.id", a, head: true), Self.field("source.ip", a, head: false),
                Self.field("source.user_agent", a, head: false), Self.field("target.id", b, head: true),
            ]))
        #expect(three.map(\.paths) == [["actor.id", "source.ip", "source.user_agent"], ["target.id"]])
        let two = try #require(
            Personal.groups([Self.field("actor.id", a, head: true), Self.field("source.ip", a, head: true)]))
        #expect(two.map(\.paths) == [["actor.id"], ["source.ip"]])
        // A field with no head before it, a head after a group's tails, or a tail after two
        // heads of its subject: no reading is the writer's, so none is taken.
        for broken in [
            [Self.field("actor.id", a, head: false), Self.field("source.ip", a, head: true)],
            [Self.field("actor.id", a, head: true), Self.field("source.ip", b, head: false)],
            [
                Self.field("actor.id", a, head: true), Self.field("source.ip", a, head: false),
                Self.field("target.id", a, head: true),
            ],
            [
                Self.field("actor.id", a, head: true), Self.field("source.ip", a, head: true),
                Self.field("target.id", a, head: false),
            ],
        ] {
            #expect(Personal.groups(broken) == nil, "\(broken.map(\.path))")
        }
    }

    @Test func aGroupOpensOnlyWithEveryValueInPlace() throws {
        let nonce = [UInt8](0..<16)
        let paths = ["actor.id", "source.ip"]
        let c = try #require(Personal.commitment(nonce: nonce, paths: paths, values: ["usr_1", "10.0.0.1"]))
        let g = Personal.Group(tag: Self.tagA, commitment: c, paths: paths)
        #expect(g.opens(nonce: nonce, values: ["usr_1", "10.0.0.1"]))
        // A value changed, two swapped, one moved across the framing, a value missing, another nonce.
        #expect(!g.opens(nonce: nonce, values: ["usr_2", "10.0.0.1"]))
        #expect(!g.opens(nonce: nonce, values: ["10.0.0.1", "usr_1"]))
        #expect(!g.opens(nonce: nonce, values: ["usr_11", "0.0.0.1"]))
        #expect(!g.opens(nonce: nonce, values: ["usr_1"]))
        #expect(!g.opens(nonce: [UInt8](1..<17), values: ["usr_1", "10.0.0.1"]))
        // A group of one is the commitment of format 2.
        let one = Personal.Group(
            tag: Self.tagA, commitment: Personal.commitment(nonce: nonce, value: "usr_1"), paths: ["actor.id"])
        #expect(one.opens(nonce: nonce, values: ["usr_1"]))
    }

    /// `Fixtures/format2-committed.tar.gz`: a log written by the build before format 3
    /// (b7e7f9a's `auditd --personal-fields commit`, the 40 events of `genevents.py --count 40
    /// --seed 7` through `writers.c`), its signing key beside it.
    @Test func aFormatTwoLogOpensVerifiesTakesGroupedEntriesAndErases() throws {
        let root = temporaryDirectory("format2")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tarball = try #require(
            Bundle.module.url(forResource: "format2-committed", withExtension: "tar.gz", subdirectory: "Fixtures"))
        let tar = ChildProcess()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.arguments = ["-xzf", tarball.path, "-C", root]
        try tar.run()
        tar.waitUntilExit()
        #expect(tar.terminationStatus == 0)
        let dir = root + "/data"
        let signer = try NoteSigner(String(contentsOfFile: root + "/auditd-keys/data.key", encoding: .utf8))
        let key = LogKeys(signer.verifier)
        let before = try Verifier(directory: dir, key: key).run()
        #expect(before.ok, "\(String(describing: before.failure))")
        #expect(before.entries == 40 && before.personalOpened > 40)

        let ledger = try Ledger(directory: dir, signer: signer, options: PersonalFieldTests.options(protect: true))
        let info = try #require(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: DataDirectory(dir).info)))
                as? [String: Any])
        #expect(info["format"] as? Int == 3)
        // Every old committed field is a group of one, and its value opens it.
        var old = 0
        var subject: (org: String, id: String)?
        for seq in UInt64(0)..<40 {
            let e = try ledger.entry(seq: seq)
            #expect(!String(decoding: e.content, as: UTF8.self).contains(#"{"$s":"#))
            for d in ledger.disclose(e) {
                guard case .open(_, let value) = d.state else {
                    Issue.record("entry \(seq) \(d.path): \(d.state)")
                    continue
                }
                if d.path == "actor.id", subject == nil,
                    let org = try Entry.decodeStored(e.content)["org"]?.stringValue
                {
                    subject = (org, value)
                }
                old += 1
            }
        }
        #expect(old == before.personalOpened)
        // A new entry of the same person: one commitment for the subject's fields.
        let person = try #require(subject)
        let json =
            #"{"org":"\#(person.org)","category":"access","action":"auth.login.success","actor":{"type":"human","id":"\#(person.id)"},"target":{"type":"app","id":"console"},"outcome":"success","source":{"service":"sso","ip":"203.0.113.9","user_agent":"Mozilla/5.0"},"occurred_at":"2026-12-01T00:00:00.000Z"}"#
        _ = try ledger.appendAndWait([try PersonalFieldTests.prepare(Array(json.utf8), ledger)])
        let new = try ledger.entry(seq: 40)
        let text = String(decoding: new.content, as: UTF8.self)
        #expect(text.components(separatedBy: #""$c":"#).count == 2 && text.contains(#"{"$s":"#), "\(text)")
        #expect(ledger.disclose(new).count == 3)
        #expect(ledger.disclose(new).allSatisfy { if case .open = $0.state { true } else { false } })
        // Erased: the old fields (a commitment each) and the new group (one for three) alike.
        let done = try ledger.erase(
            org: person.org, subject: person.id, reason: "request PRIV-2", authority: "DPO", actor: "uid:0",
            via: "test"
        ) {}
        #expect(done.record.seq == 41)
        #expect(
            ledger.disclose(new).allSatisfy {
                if case .erased(let r) = $0.state { r.recordSeq == 41 } else { false }
            })
        try ledger.close()
        let after = try Verifier(directory: dir, key: key).run()
        #expect(after.ok && after.entries == 42, "\(String(describing: after.failure))")
        #expect(after.personalErased >= 4 && after.personalOpened + after.personalErased > before.personalOpened + 3)
    }
}
