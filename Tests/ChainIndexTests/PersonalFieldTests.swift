import AuditBase
import Foundation
import LogProofs
import PersonalStore
import Synchronization
import TestSupport
import Testing
import Verification

@testable import AuditEntries
@testable import ChainIndex

/// Personal fields (format-spec.md §5.4): committed in the signed bytes, their values in the
/// personal store, erased under a recorded authority with every proof intact.
@Suite struct PersonalFieldTests {
    static func entry(
        actor: String, name: String = "Ann Example", ip: String = "203.0.113.9", email: String? = nil
    )
        -> [UInt8]
    {
        let meta = email.map { #""email":"\#($0)","plan":"pro""# } ?? #""plan":"pro""#
        let personal = email == nil ? "" : #","personal":["email"]"#
        return Array(
            #"{"org":"acme","category":"authentication","action":"user.login","actor":{"type":"human","id":"\#(actor)","name":"\#(name)"},"target":{"type":"user","id":"\#(actor)","name":"\#(name)"},"outcome":"success","source":{"service":"auth","ip":"\#(ip)","user_agent":"Mozilla/5.0 (\#(actor))"},"occurred_at":"2026-12-01T00:00:00.000Z","metadata":{\#(meta)}\#(personal)}"#
                .utf8)
    }

    static func options(protect: Bool?) -> LedgerOptions {
        var o = Sample.options()
        o.protectPersonalFields = protect
        return o
    }

    static func prepare(_ json: [UInt8], _ ledger: Ledger) throws -> PreparedEntry {
        try Entry.prepare(
            json: json, receivedAt: ReceivedAt.now(), writer: Writer(uid: 0, gid: 0, via: "test"),
            keys: ledger.subjectKeys)
    }

    /// Every file under `dir`, read whole.
    static func allBytes(_ dir: String) throws -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        let e = FileManager.default.enumerator(atPath: dir)
        while let p = e?.nextObject() as? String {
            let full = dir + "/" + p
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue {
                out.append((p, Array(try Data(contentsOf: URL(fileURLWithPath: full)))))
            }
        }
        return out
    }

    static func occurs(_ needle: String, in files: [(String, [UInt8])]) -> [String] {
        let n = Array(needle.utf8)
        return files.filter { (_, b) in
            b.count >= n.count
                && (0...(b.count - n.count)).contains { i in b[i] == n[0] && Array(b[i..<(i + n.count)]) == n }
        }.map(\.0)
    }

    /// The paths of the fields a prepared entry's signed bytes hold as commitments, sorted.
    static func committedPaths(_ e: PreparedEntry) -> [String] {
        guard let v = try? JSONParser.parse(e.content) else { return ["(not JSON)"] }
        return Personal.commitments(in: v).map(\.path)
    }

    @Test func personalValuesAreCommittedAndOpenFromTheStore() throws {
        let root = temporaryDirectory("personal")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dir = root + "/data"
        let ledger = try Ledger(directory: dir, signer: try Sample.signer(), options: Self.options(protect: true))
        let e = try Self.prepare(Self.entry(actor: "usr_ann", email: "ann@example.com"), ledger)
        let text = String(decoding: e.content, as: UTF8.self)
        for clear in ["usr_ann", "Ann Example", "203.0.113.9", "Mozilla", "ann@example.com"] {
            #expect(!text.contains(clear), "\(clear) is in the signed bytes: \(text)")
        }
        #expect(text.contains(#""plan":"pro""#) && text.contains(#""type":"human""#) && !text.contains("personal"))
        #expect(
            Self.committedPaths(e) == [
                "actor.id", "actor.name", "metadata.email", "source.ip", "source.user_agent", "target.id",
                "target.name",
            ])
        #expect(e.fields.actor.hasPrefix("human:$s:"))
        let r = try ledger.appendAndWait([e])[0]
        let stored = try ledger.entry(seq: r.seq)
        let shown = ledger.disclose(stored)
        #expect(shown.count == 7)
        var values: [String: String] = [:]
        for d in shown {
            guard case .open(let nonce, let value) = d.state else {
                Issue.record("\(d.path) is \(d.state)")
                continue
            }
            #expect(nonce.count == 16)
            values[d.path] = value
        }
        #expect(values["actor.id"] == "usr_ann" && values["metadata.email"] == "ann@example.com")
        #expect(values["source.user_agent"] == "Mozilla/5.0 (usr_ann)" && values["target.name"] == "Ann Example")
        // The index and recovery read a committed actor by its tag, as the prepared entry did,
        // the one-pass scanner (no JSON tree) as the parser does; a commitment that is not
        // base64url of 32 bytes is the parser's to judge.
        #expect(Entry.indexFields(ofStored: stored.content)?.fields.actor == e.fields.actor)
        #expect(Entry.scanIndexFields(stored.content)?.fields.actor == e.fields.actor)
        #expect(Entry.storedFieldScannerAgrees(stored.content))
        let text2 = String(decoding: stored.content, as: UTF8.self)
        let id = try #require(text2.range(of: #""id":{"$c":""#))
        var mangled = text2
        mangled.replaceSubrange(id.upperBound..<mangled.index(id.upperBound, offsetBy: 1), with: "!")
        #expect(Entry.scanIndexFields(Array(mangled.utf8)) == nil)
        #expect(Entry.storedFieldScannerAgrees(Array(mangled.utf8)))
        // An agent's entry has no human party: nothing of it is personal.
        let agent = try Entry.prepare(
            json: Array(
                #"{"org":"acme","category":"agents","action":"vm.up","actor":{"type":"agent","id":"agt_1"},"on_behalf_of":{"type":"service","id":"svc"},"target":{"type":"vm","id":"vm_1"},"outcome":"success","source":{"service":"orch","ip":"10.0.0.1"},"occurred_at":"2026-12-01T00:00:00.000Z"}"#
                    .utf8), receivedAt: ReceivedAt.now(), writer: Writer(uid: 0, gid: 0, via: "test"),
            keys: ledger.subjectKeys)
        #expect(
            Self.committedPaths(agent).isEmpty && agent.sealedRows.isEmpty
                && String(decoding: agent.content, as: UTF8.self).contains("10.0.0.1"))
        try ledger.close()
        // No value is on disk in the clear: the store holds ciphertext, and the subject's id
        // only in personal/subjects beside its key (erasable with it).
        let files = try Self.allBytes(dir)
        for clear in ["Ann Example", "203.0.113.9", "ann@example.com", "Mozilla"] {
            #expect(Self.occurs(clear, in: files).isEmpty, "\(clear) is in \(Self.occurs(clear, in: files))")
        }
        #expect(Self.occurs("usr_ann", in: files) == ["personal/subjects"])
    }

    /// The hot path and the general one commit the same fields the same way: only the nonces
    /// (so the commitments) differ, the index sees the same actor, and each path's rows open
    /// to the same paths and values, each under the commitment its entry holds.
    @Test func bothPreparePathsCommitTheSameFields() throws {
        let root = temporaryDirectory("personal-paths")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dir = root + "/data"
        let ledger = try Ledger(directory: dir, signer: try Sample.signer(), options: Self.options(protect: true))
        defer { _ = try? ledger.close() }
        let keys = try #require(ledger.subjectKeys)
        let inputs: [String] = [
            String(decoding: Self.entry(actor: "usr_ann"), as: UTF8.self),
            #"{"org":"acme","category":"agents","action":"vm.up","actor":{"type":"agent","id":"agt_1"},"on_behalf_of":{"type":"human","id":"usr_ann","approval":"apr_1"},"target":{"type":"person","id":"usr_bob","name":"Bob"},"outcome":"success","source":{"service":"orch","ip":"10.0.0.1","user_agent":"curl"},"occurred_at":"2026-12-01T00:00:00.000Z"}"#,
            #"{"org":"acme","category":"access","action":"x","actor":{"type":"service","id":"svc"},"target":{"type":"repo","id":"r"},"outcome":"denied","source":{"service":"gw"},"occurred_at":"2026-12-01T00:00:00.000Z"}"#,
        ]
        func masked(_ c: [UInt8]) -> String {
            String(decoding: c, as: UTF8.self).replacingOccurrences(
                of: #""\$c":"[A-Za-z0-9_-]{43}""#, with: #""$c":"-""#, options: .regularExpression)
        }
        let store = try #require(keys as? PersonalStore)
        // What a path's rows open to, each value checked against its entry's commitment.
        func opened(_ e: PreparedEntry, seq: UInt64) throws -> [String] {
            try store.write([(seq: seq, rows: e.sealedRows)])
            try store.sync()
            let stored = try #require(try JSONParser.parse(e.content))
            let groups = try #require(Personal.groups(Personal.commitments(in: stored)))
            let openings = try store.openings(seq: seq)
            // Each subject's fields open its one commitment together, with one nonce.
            for g in groups {
                let mine = g.paths.compactMap { p in openings.first { $0.path == p } }
                #expect(mine.count == g.paths.count && Set(mine.map(\.nonce)).count == 1, "\(g.paths)")
                #expect(g.opens(nonce: mine.first?.nonce ?? [], values: mine.map(\.value)), "\(g.paths)")
            }
            #expect(groups.map(\.paths.count).reduce(0, +) == openings.count)
            return openings.map { $0.path + "=" + $0.value }.sorted()
        }
        var seq: UInt64 = 0
        for input in inputs {
            let json = Array(input.utf8)
            let fast = try #require(
                json.withUnsafeBufferPointer {
                    Entry.fastPrepare(
                        $0, receivedAt: 1_790_000_000_000, writer: Writer(uid: 0, gid: 0, via: "t"), keys: keys)
                })
            let general = try Entry.generalPrepare(
                json: json, receivedAt: 1_790_000_000_000, writer: Writer(uid: 0, gid: 0, via: "t"), keys: keys)
            #expect(masked(fast.content) == masked(general.content), "\(input)")
            #expect(Self.committedPaths(fast) == Self.committedPaths(general))
            #expect(fast.fields == general.fields)
            #expect(fast.sealedRows.count == general.sealedRows.count)
            let fastValues = try opened(fast, seq: seq)
            let generalValues = try opened(general, seq: seq + 1)
            seq += 2
            #expect(fastValues == generalValues)
            #expect(fastValues.count == Self.committedPaths(general).count)
        }
    }

    /// An erasure that lands between an entry's preparation and its group commit wins: the
    /// row sealed under the destroyed key is never written, nor is the key itself.
    @Test func aRowWhoseKeyWasDestroyedSincePreparationIsNeverWritten() throws {
        let root = temporaryDirectory("personal-race")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dir = root + "/personal"
        let store = try PersonalStore(directory: dir)
        let kept = try #require(store.key(org: "acme", subject: "usr_keep"))
        let gone = try #require(store.key(org: "acme", subject: "usr_gone"))
        func row(_ k: SubjectKey, _ value: String) throws -> SealedRow {
            let body = try #require(
                store.sealedRow(
                    key: k,
                    fields: [SealedField(path: "actor.id", nonce: [UInt8](repeating: 1, count: 16)[...], value: value)],
                    iv: [UInt8](repeating: 2, count: 16)[...]))
            return SealedRow(key: k, body: body)
        }
        let rows = [
            (seq: UInt64(1), rows: [try row(kept, "usr_keep")]), (seq: UInt64(2), rows: [try row(gone, "usr_gone")]),
        ]
        try store.destroyKey(tag: gone.tag)
        #expect(gone.destroyed.load(ordering: .acquiring) && !kept.destroyed.load(ordering: .acquiring))
        try store.write(rows)
        try store.sync()
        #expect(try store.openings(seq: 1).map(\.value) == ["usr_keep"])
        #expect(try store.openings(seq: 2).isEmpty)
        let reopened = try PersonalStore(directory: dir)
        #expect(reopened.existingKey(org: "acme", subject: "usr_gone") == nil)
        #expect(reopened.existingKey(org: "acme", subject: "usr_keep") != nil)
        #expect(try reopened.rows(file: 0)?.map(\.seq) == [1])
    }

    @Test func declarationsAreCheckedWithClearErrors() throws {
        let root = temporaryDirectory("personal-decl")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dir = root + "/data"
        let ledger = try Ledger(directory: dir, signer: try Sample.signer(), options: Self.options(protect: true))
        defer { _ = try? ledger.close() }
        func refusal(_ json: String) -> EntryError? {
            do {
                _ = try Self.prepare(Array(json.utf8), ledger)
                return nil
            } catch { return error as? EntryError }
        }
        let base =
            #""org":"acme","category":"billing","action":"invoice.sent","actor":{"type":"service","id":"billing"},"target":{"type":"invoice","id":"inv_1"},"outcome":"success","source":{"service":"billing"},"occurred_at":"2026-12-01T00:00:00.000Z""#
        #expect(refusal(#"{\#(base),"metadata":{"email":"a@b.c"},"personal":["email"]}"#)?.field == "subjects.email")
        #expect(refusal(#"{\#(base),"metadata":{"n":3},"personal":["n"]}"#)?.field == "metadata.n")
        #expect(refusal(#"{\#(base),"metadata":{},"personal":["email"]}"#)?.field == "personal[0]")
        #expect(
            refusal(#"{\#(base),"metadata":{"email":"a@b.c"},"personal":["email"],"subjects":{"x":"u"}}"#)?.field
                == "subjects.x")
        // Named, the subject is the one given: a service's entry about a person.
        let e = try Self.prepare(
            Array(#"{\#(base),"metadata":{"email":"a@b.c"},"personal":["email"],"subjects":{"email":"usr_9"}}"#.utf8),
            ledger)
        #expect(Self.committedPaths(e) == ["metadata.email"] && e.sealedRows.first?.key.subject == "usr_9")
        #expect(e.sealedRows.count == 1)
    }

    @Test func erasureForgetsTheValuesAndKeepsEveryProof() throws {
        let root = temporaryDirectory("personal-erase")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dir = root + "/data"
        let signer = try Sample.signer()
        var ledger = try Ledger(directory: dir, signer: signer, options: Self.options(protect: true))
        var entries: [PreparedEntry] = []
        for i in 0..<20 {
            entries.append(
                try Self.prepare(
                    Self.entry(
                        actor: i % 2 == 0 ? "usr_ann" : "usr_bob", name: i % 2 == 0 ? "Ann Example" : "Bob Other",
                        ip: i % 2 == 0 ? "203.0.113.9" : "198.51.100.4", email: i % 2 == 0 ? "ann@example.com" : nil),
                    ledger))
        }
        _ = try ledger.appendAndWait(entries)
        try ledger.checkpointNow()
        #expect(throws: AuditError.self) {
            try ledger.erase(
                org: "acme", subject: "usr_nobody", reason: "r", authority: "DPO", actor: "uid:0", via: "test"
            ) {}
        }
        #expect(throws: AuditError.self) {
            try ledger.erase(
                org: "acme", subject: "usr_ann", reason: "r", authority: "DPO", actor: "uid:0", via: "test"
            ) {
                throw AuditError(.invalidArgument, "org acme is under legal hold")
            }
        }
        let done = try ledger.erase(
            org: "acme", subject: "usr_ann", reason: "request PRIV-1", authority: "DPO Jane", actor: "uid:0",
            via: "test"
        ) {}
        #expect(done.record.seq == 20)
        let record = try Entry.decodeStored(try ledger.entry(seq: 20).content)
        #expect(record["action"]?.stringValue == "data_subject.erased")
        #expect(record["target"]?["id"]?.stringValue == done.tag.text)
        #expect(record["metadata"]?["authority"]?.stringValue == "DPO Jane")
        func states(_ seq: UInt64) throws -> [String] {
            ledger.disclose(try ledger.entry(seq: seq)).map {
                switch $0.state {
                case .open: return "open"
                case .erased(let r): return "erased \(r.recordSeq) \(r.authority)"
                case .withheld(let why): return "withheld \(why)"
                }
            }
        }
        #expect(Set(try states(0)) == ["erased 20 DPO Jane"])
        #expect(Set(try states(1)) == ["open"])
        try ledger.checkpointNow()
        try ledger.close()
        // Reopened: still erased, still open; the whole directory verifies, and says what it found.
        ledger = try Ledger(directory: dir, signer: signer, options: Self.options(protect: nil))
        #expect(ledger.protectsPersonalFields)
        #expect(Set(try states(2)) == ["erased 20 DPO Jane"])
        #expect(Set(try states(3)) == ["open"])
        try ledger.close()
        let report = try Verifier(directory: dir, key: LogKeys(signer.verifier)).run()
        #expect(report.ok, "\(String(describing: report.failure))")
        #expect(report.personalErased == 10 * 7 && report.personalOpened == 10 * 6 + 1)
        let files = try Self.allBytes(dir)
        for clear in ["usr_ann", "Ann Example", "203.0.113.9", "ann@example.com", "Bob Other", "198.51.100.4"] {
            #expect(Self.occurs(clear, in: files).isEmpty, "\(clear) is in \(Self.occurs(clear, in: files))")
        }
        #expect(Self.occurs("usr_bob", in: files) == ["personal/subjects"])
    }

    /// `personal/withheld` (format-spec.md §5.4.2): a record's list in chunks of 8,000, read
    /// back whole and in order after a reopen; a torn tail loses only the chunk it cuts.
    @Test func aLongWithheldListSurvivesAReopen() throws {
        let dir = temporaryDirectory("personal-withheld")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let seqs = (0..<20_000).map { UInt64($0) * 3 }
        try PersonalStore(directory: dir).withheld.record(70_000, withholds: seqs)
        let again = try PersonalStore(directory: dir)
        #expect(again.withheld.entries(of: 70_000) == seqs)
        #expect(again.withheld.record(withholding: 59_997) == 70_000)
        #expect(again.withheld.record(withholding: 59_998) == nil)
        #expect(again.withheld.records == [70_000])
        let path = dir + "/withheld"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let h = try #require(FileHandle(forWritingAtPath: path))
        try h.truncate(atOffset: UInt64(size - 5))
        try h.close()
        #expect(try PersonalStore(directory: dir).withheld.entries(of: 70_000) == Array(seqs.prefix(16_000)))
    }

    @Test func verifyFailsWhenTheStoreLosesOrAltersAValue() throws {
        let root = temporaryDirectory("personal-tamper")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dir = root + "/data"
        let signer = try Sample.signer()
        let ledger = try Ledger(directory: dir, signer: signer, options: Self.options(protect: true))
        _ = try ledger.appendAndWait((0..<5).map { i in try Self.prepare(Self.entry(actor: "usr_\(i)"), ledger) })
        try ledger.close()
        #expect(try Verifier(directory: dir, key: LogKeys(signer.verifier)).run().ok)
        let personal = DataDirectory(dir).personal
        let values = try FileManager.default.contentsOfDirectory(atPath: personal + "/values").map {
            personal + "/values/" + $0
        }[0]
        let original = try Data(contentsOf: URL(fileURLWithPath: values))
        // A value row changed in place, its CRC made right again: it no longer opens.
        var b = [UInt8](original)
        let len = Int(b[0]) | Int(b[1]) << 8
        b[8 + len - 1] ^= 0x01
        let crc = CRC32C.checksum(b[8..<(8 + len)])
        b[4] = UInt8(crc & 0xFF)
        b[5] = UInt8((crc >> 8) & 0xFF)
        b[6] = UInt8((crc >> 16) & 0xFF)
        b[7] = UInt8(crc >> 24)
        try Data(b).write(to: URL(fileURLWithPath: values))
        let altered = try Verifier(directory: dir, key: LogKeys(signer.verifier)).run()
        #expect(altered.failure?.message.contains("do not open") == true, "\(String(describing: altered.failure))")
        try original.write(to: URL(fileURLWithPath: values))
        // The keys lost: the values cannot be opened, and no erasure explains it.
        try FileManager.default.removeItem(atPath: personal + "/subjects")
        let lost = try Verifier(directory: dir, key: LogKeys(signer.verifier)).run()
        #expect(
            lost.failure?.message.contains("no erasure of it is recorded") == true,
            "\(String(describing: lost.failure))")
        // The values lost.
        try FileManager.default.removeItem(atPath: values)
        let gone = try Verifier(directory: dir, key: LogKeys(signer.verifier)).run()
        #expect(gone.failure?.message.contains("missing from the personal store") == true)
    }

    @Test func rowsBeyondTheLogAreCutAndOlderLogsStillVerify() throws {
        let root = temporaryDirectory("personal-cut")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dir = root + "/data"
        let signer = try Sample.signer()
        // A log written in the clear (as every log before §5.4), then switched to commit.
        var ledger = try Ledger(directory: dir, signer: signer, options: Self.options(protect: nil))
        #expect(ledger.subjectKeys == nil)
        _ = try ledger.appendAndWait([try Self.prepare(Self.entry(actor: "usr_old"), ledger)])
        try ledger.close()
        func info() throws -> [String: Any] {
            try #require(
                JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: DataDirectory(dir).info)))
                    as? [String: Any])
        }
        #expect(try info()["format"] as? Int == 1)
        ledger = try Ledger(directory: dir, signer: signer, options: Self.options(protect: true))
        // From now on entries may hold committed fields, which format-1 readers do not know.
        #expect(try info()["format"] as? Int == 3 && info()["personal_fields"] as? String == "commit")
        _ = try ledger.appendAndWait([try Self.prepare(Self.entry(actor: "usr_new"), ledger)])
        #expect(ledger.disclose(try ledger.entry(seq: 0)).isEmpty)
        #expect(ledger.disclose(try ledger.entry(seq: 1)).count == 6)
        try ledger.close()
        // A crash after the values' sync and before the segment's: rows past the log's end.
        let store = try PersonalStore(directory: DataDirectory(dir).personal)
        let key = try #require(store.key(org: "acme", subject: "usr_ghost"))
        let nonce = [UInt8](repeating: 7, count: 16)
        let ghost = try #require(
            store.sealedRow(
                key: key, fields: [SealedField(path: "actor.id", nonce: nonce[...], value: "usr_ghost")],
                iv: [UInt8](repeating: 9, count: 16)[...]))
        try store.write([(2, [SealedRow(key: key, body: ghost)])])
        try store.sync()
        #expect(try store.openings(seq: 2).count == 1)
        ledger = try Ledger(directory: dir, signer: signer, options: Self.options(protect: nil))
        #expect(try ledger.personal.openings(seq: 2).isEmpty)
        // The next entry takes seq 2 and its own values only.
        _ = try ledger.appendAndWait([try Self.prepare(Self.entry(actor: "usr_next"), ledger)])
        #expect(
            ledger.disclose(try ledger.entry(seq: 2)).allSatisfy {
                if case .open = $0.state { return true } else { return false }
            })
        try ledger.close()
        #expect(try Verifier(directory: dir, key: LogKeys(signer.verifier)).run().ok)
        // A format this build does not know is refused, saying so.
        var future = try info()
        future["format"] = 4
        try JSONSerialization.data(withJSONObject: future).write(to: URL(fileURLWithPath: DataDirectory(dir).info))
        #expect(throws: AuditError.self) {
            try Ledger(directory: dir, signer: signer, options: Self.options(protect: nil))
        }
    }
}

/// format-spec.md §5.4.5's vectors, read from the spec: the commitment, the subject tag and a
/// value row's ciphertext, each recomputed by the code.
@Suite struct PersonalVectorTests {
    static func vectors() throws -> [(kind: String, args: [String: String], result: String)] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let spec = try String(contentsOf: root.appendingPathComponent("format-spec.md"), encoding: .utf8)
        return spec.split(separator: "\n").filter { $0.hasPrefix("personal-vector ") }.compactMap { line in
            guard let colon = line.lastIndex(of: ":") else { return nil }
            let words = line[..<colon].split(separator: " ").dropFirst()
            guard let kind = words.first else { return nil }
            var args: [String: String] = [:]
            for w in words.dropFirst() {
                let kv = w.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { args[String(kv[0])] = String(kv[1]) }
            }
            return (String(kind), args, line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
    }

    /// RFC 4648's base64 vectors, in the url alphabet without padding; only canonical text decodes.
    @Test func base64urlIsRFC4648() throws {
        for (plain, text) in [
            ("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"),
        ] {
            #expect(Base64URL.encode(Array(plain.utf8)) == text)
            #expect(Base64URL.decode(text) == Array(plain.utf8))
        }
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        for bad in ["Zh", "Zg=", "Z", "Zm9v+", "Zm/v"] { #expect(Base64URL.decode(bad) == nil, "\(bad)") }
        #expect(SubjectTag(text: "OIaTaE9BD-AVOUM0IlZzug")?.bytes.count == 16)
        #expect(SubjectTag(text: "OIaTaE9BD-AVOUM0IlZzu") == nil)
    }

    @Test func theSpecsVectorsAreTheCodes() throws {
        let v = try Self.vectors()
        #expect(Set(v.map(\.kind)) == ["commitment", "group", "tag", "row"])
        for (kind, a, result) in v {
            switch kind {
            case "commitment":
                let nonce = try #require([UInt8](hex: a["nonce"] ?? ""))
                #expect(Base64URL.encode(Personal.commitment(nonce: nonce, value: a["value"] ?? "").bytes) == result)
            case "group":
                // The fields are the arguments other than the nonce, in path order.
                let nonce = try #require([UInt8](hex: a["nonce"] ?? ""))
                let paths = a.keys.filter { $0 != "nonce" }.sorted { Personal.precedes($0, $1) }
                let c = try #require(
                    Personal.commitment(nonce: nonce, paths: paths, values: paths.map { a[$0] ?? "" }))
                #expect(paths == ["actor.id", "source.ip"] && Base64URL.encode(c.bytes) == result)
            case "tag":
                let key = SubjectKey(
                    org: a["org"] ?? "", subject: a["subject"] ?? "", secret: try #require([UInt8](hex: a["key"] ?? ""))
                )
                #expect(key.tag.text == result)
                #expect(key.secret == Array(SHA256.hash(Array("auditlog personal test key".utf8)).bytes))
            default:
                let key = SubjectKey(org: "o", subject: "s", secret: try #require([UInt8](hex: a["key"] ?? "")))
                let plain = try #require([UInt8](hex: a["plaintext"] ?? ""))
                let iv = try #require([UInt8](hex: a["iv"] ?? ""))[...]
                #expect(key.crypt(plain, iv: iv)?.hex == result)
                #expect(key.crypt(key.crypt(plain, iv: iv) ?? [], iv: iv) == plain)
                // The plaintext is the row's one field as §5.4.2 lays it out.
                let nonce = [UInt8](0..<16)
                let scratch = temporaryDirectory("vec")
                defer { try? FileManager.default.removeItem(atPath: scratch) }
                let sealed = try #require(
                    PersonalStore(directory: scratch).sealedRow(
                        key: key, fields: [SealedField(path: "actor.id", nonce: nonce[...], value: "usr_1")], iv: iv))
                // `S iv ctLen ct`, sealed in place.
                #expect(sealed.suffix(plain.count).elementsEqual(key.crypt(plain, iv: iv) ?? []))
                #expect(sealed.prefix(34).elementsEqual(key.tag.bytes + Array(iv) + [UInt8(plain.count), 0]))
                #expect(sealed.count == 34 + plain.count)
            }
        }
    }
}
