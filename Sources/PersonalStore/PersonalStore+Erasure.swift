import AuditBase
import AuditEntries
import Foundation

// The personal store's erasure (format-spec.md §5.4.3): the completed erasure recorded, then
// the subject's key destroyed, durably.
extension PersonalStore {
    /// Records a completed erasure (before the key is destroyed: it names no one).
    public func recordErasure(_ r: ErasureRecord) throws {
        guard !readOnly else { throw AuditError(.invalidArgument, "\(directory) is open read-only") }
        try ioLock.withLock {
            guard lock.withLock({ erasures[r.tag] == nil }) else { return }
            var w = ByteWriter()
            Journal.frame(r.encode(), into: &w)
            try FileOps.pwriteAll(erasuresFile.fd, w.bytes[...], at: erasuresEnd, path: erasuresFile.path)
            try FileOps.fdatasync(erasuresFile.fd, path: erasuresFile.path)
            erasuresEnd += Int64(w.bytes.count)
            lock.withLock {
                erasures[r.tag] = r
                erasuresByRecord[r.recordSeq] = r
            }
        }
    }

    /// Destroys the key tagged `tag`, durably: `subjects` is rewritten without it (write,
    /// fsync, rename, fsync the directory), so its rows can never be read again.
    public func destroyKey(tag: SubjectTag) throws {
        guard !readOnly else { throw AuditError(.invalidArgument, "\(directory) is open read-only") }
        // Both locks throughout: no row or key of this subject is written meanwhile, and no
        // entry is prepared under the key while the file that forgets it is being replaced.
        try ioLock.withLock {
            try lock.withLock {
                guard let k = byTag[tag] else { return }
                var w = ByteWriter(capacity: keys.count * 80)
                for x in keys.values where x !== k && !pending.contains(where: { $0 === x }) {
                    Journal.frame(
                        KeyRecord.encode(SubjectKeyParts(org: x.org, subject: x.subject, secret: x.secret)), into: &w)
                }
                let path = directory + "/subjects"
                try FileOps.replaceFile(path, contents: w.bytes, mode: 0o600)
                subjectsFile = FileHandleRef(fd: try FileOps.open(path, O_WRONLY | O_CLOEXEC), path: path)
                subjectsEnd = Int64(w.bytes.count)
                keys[Name(org: k.org, subject: k.subject)] = nil
                byTag[tag] = nil
                pending.removeAll { $0 === k }
                k.destroyed.store(true, ordering: .releasing)
                destroyedKeys.add(1, ordering: .releasing)
            }
        }
    }
}
