import AuditBase
import AuditEntries
import Synchronization

/// The keys one thread found lately in one store: what spares preparing an entry the store's
/// lock, which both event loops take on nearly every entry with a person in it. A table of
/// 16,384 slots (256 KiB, made on a thread's first committed entry), each a key by the hash of
/// its name: over `genevents.py`'s first 1,000,000 events, one thread of two finds 89 % of its
/// subjects here (76 % with 4,096 slots). A slot is checked against the key's own name and
/// state, so a collision or an erased key only sends the lookup to the store. The table holds
/// its keys until the thread looks up another store's or ends.
final class RecentKeys {
    static let slots = 1 << 14
    static let threads = PerThread { RecentKeys() }

    // One thread's only: no dynamic exclusivity check on each access.
    /// Whose keys these are (`PersonalStore.serial`) and how many keys that store had
    /// destroyed when they were found: any change empties the table.
    @exclusivity(unchecked) private var store: UInt64 = 0
    @exclusivity(unchecked) private var forgotten: UInt64 = 0
    /// A slot's hash beside its key: one cache line read for both (the table is larger than
    /// the cache, so each lookup's lines are misses).
    private struct Slot {
        var hash: UInt64 = 0
        var key: SubjectKey?
    }
    @exclusivity(unchecked) private var table: [Slot] = []
    /// Written on every lookup: no other thread's object on its cache lines.
    private let padding = CacheLinePadding()

    /// The slot's key if it is `org`'s `subject` in `store` and still alive.
    func find(
        _ hash: UInt64, org: UnsafeRawBufferPointer, subject: UnsafeRawBufferPointer, store: UInt64, forgotten: UInt64
    ) -> SubjectKey? {
        guard self.store == store, self.forgotten == forgotten else {
            reset(store: store, forgotten: forgotten)
            return nil
        }
        let i = Int(truncatingIfNeeded: hash) & (Self.slots - 1)
        return table.withUnsafeBufferPointer { t in
            guard t[i].hash == hash, let k = t[i].key, !k.destroyed.load(ordering: .acquiring),
                k.isKey(org: org, subject: subject)
            else { return nil }
            return k
        }
    }

    /// Keeps `key` in its slot (replacing what was there).
    func keep(_ key: SubjectKey, _ hash: UInt64, store: UInt64, forgotten: UInt64) {
        guard self.store == store, self.forgotten == forgotten else { return }
        let i = Int(truncatingIfNeeded: hash) & (Self.slots - 1)
        table[i] = Slot(hash: hash, key: key)
    }

    private func reset(store: UInt64, forgotten: UInt64) {
        self.store = store
        self.forgotten = forgotten
        table = [Slot](repeating: Slot(), count: Self.slots)
    }
}

extension PersonalStore {
    /// The key of `subject` in `org` (their UTF-8 bytes), made if it has none: this thread's
    /// recent keys first, then the store (`key(org:subject:)`).
    public func key(org: UnsafeRawBufferPointer, subject: UnsafeRawBufferPointer) -> SubjectKey? {
        // The store's own hash of a name (the process's seeded hasher: a writer cannot aim
        // names at one slot on purpose; if it did, each would only be sent to the store).
        let hash = UInt64(bitPattern: Int64(Name.digest(org: org, subject: subject)))
        let forgotten = destroyedKeys.load(ordering: .acquiring)
        if let k = RecentKeys.threads.withValue({
            $0?.find(hash, org: org, subject: subject, store: serial, forgotten: forgotten)
        }) {
            return k
        }
        guard let k = key(org: String(decoding: org, as: UTF8.self), subject: String(decoding: subject, as: UTF8.self))
        else { return nil }
        RecentKeys.threads.withValue { $0?.keep(k, hash, store: serial, forgotten: forgotten) }
        return k
    }
}
