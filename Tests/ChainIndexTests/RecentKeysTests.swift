import AuditBase
import Foundation
import PersonalStore
import TestSupport
import Testing

@testable import AuditEntries

/// Subjects' keys found by their names' bytes: a thread's recent keys (`RecentKeys`) answer for
/// the store, and never with a key it no longer holds, nor with another store's.
@Suite struct RecentKeysTests {
    static func key(_ store: PersonalStore, _ org: String, _ subject: String) -> SubjectKey? {
        var o = org
        var s = subject
        return o.withUTF8 { o in
            s.withUTF8 { store.key(org: UnsafeRawBufferPointer(o), subject: UnsafeRawBufferPointer($0)) }
        }
    }

    @Test func aKeyFoundByItsBytesIsTheStoresKey() throws {
        let root = temporaryDirectory("recent-keys")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try PersonalStore(directory: root + "/personal")
        let made = try #require(Self.key(store, "acme", "usr_1"))
        #expect(Self.key(store, "acme", "usr_1") === made)
        #expect(store.key(org: "acme", subject: "usr_1") === made)
        #expect(store.existingKey(org: "acme", subject: "usr_1") === made)
        // Names that share bytes are other subjects.
        let other = try #require(Self.key(store, "acme", "usr_12"))
        #expect(other !== made && other.tag != made.tag)
        #expect(Self.key(store, "acme2", "usr_1") !== made)
    }

    @Test func aKeysOwnBytesAreItsFields() throws {
        let root = temporaryDirectory("recent-keys-bytes")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let k = try #require(try PersonalStore(directory: root + "/personal").key(org: "acme", subject: "usr_1"))
        #expect(Array(k.secretBytes) == k.secret && k.secret.count == 32)
        #expect(Array(k.tagBytes) == k.tag.bytes)
        #expect(Array(k.committedTail) == Personal.committedTail(k.tag))
        func named(_ o: String, _ s: String) -> Bool {
            var o = o
            var s = s
            return o.withUTF8 { o in
                s.withUTF8 { k.isKey(org: UnsafeRawBufferPointer(o), subject: UnsafeRawBufferPointer($0)) }
            }
        }
        #expect(SubjectKey(org: "acme", subject: "usr_1", secret: [1, 2, 3]).secretBytes.isEmpty)
        #expect(named("acme", "usr_1"))
        #expect(!named("acme", "usr_2") && !named("acme", "usr_10") && !named("acm", "eusr_1") && !named("", "acme"))
    }

    @Test func anErasedKeyIsNotFoundAgainOnAThreadThatFoundItBefore() throws {
        let root = temporaryDirectory("recent-keys-erased")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try PersonalStore(directory: root + "/personal")
        // A thread that finds the key (so keeps it), waits for the erasure, then looks again.
        let found = DispatchSemaphore(value: 0)
        let erased = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var before: SubjectKey?
        nonisolated(unsafe) var after: SubjectKey?
        Thread {
            before = Self.key(store, "acme", "usr_gone")
            _ = Self.key(store, "acme", "usr_gone")
            found.signal()
            erased.wait()
            after = Self.key(store, "acme", "usr_gone")
            done.signal()
        }.start()
        found.wait()
        let old = try #require(before)
        #expect(Self.key(store, "acme", "usr_gone") === old)
        try store.destroyKey(tag: old.tag)
        erased.signal()
        done.wait()
        let new = try #require(after)
        #expect(new !== old && new.tag != old.tag && !new.destroyed.load(ordering: .acquiring))
        #expect(Self.key(store, "acme", "usr_gone") === new)
        #expect(store.existingKey(org: "acme", subject: "usr_gone") === new)
    }

    @Test func twoStoresOnOneThreadKeepTheirOwnKeys() throws {
        let root = temporaryDirectory("recent-keys-stores")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let a = try PersonalStore(directory: root + "/a")
        let b = try PersonalStore(directory: root + "/b")
        let inA = try #require(Self.key(a, "acme", "usr_1"))
        let inB = try #require(Self.key(b, "acme", "usr_1"))
        #expect(inA !== inB && inA.secret != inB.secret)
        #expect(b.existingKey(org: "acme", subject: "usr_1") === inB)
        #expect(Self.key(a, "acme", "usr_1") === inA)
        #expect(Self.key(b, "acme", "usr_1") === inB)
    }
}
