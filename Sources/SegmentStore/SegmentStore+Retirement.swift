import AuditBase
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Sealed segments whose records left the directory (retired by the caller), and came back.
extension SegmentStore {
    /// Retires sealed segment `n` (once the caller's marker at `path` is durable), so reads of
    /// it say where its records went. The caller then removes its hot files.
    public func retire(_ n: UInt64, path: String, label: String, hint: String) throws(AuditError) {
        let ok: Bool = lock.withLock {
            guard let i = sealed.firstIndex(where: { $0.segment == n }), sealed[i].state == .sealed else {
                return false
            }
            sealed[i].state = .retired
            sealed[i].label = label
            sealed[i].hint = hint
            sealed[i].path = path
            cache.removeAll { $0.0 == n }
            return true
        }
        guard ok else {
            throw AuditError(.invalidArgument, "segment \(n) is not a sealed hot segment", path: directory)
        }
    }

    /// Picks up retired segments whose sealed file is back (`N.seg` present again, put there by
    /// this or another process).
    @discardableResult
    public func reinstateReturned() throws(AuditError) -> [SegmentInfo] {
        let candidates = lock.withLock { sealed.filter { $0.state == .retired } }
        var restored: [SegmentInfo] = []
        for c in candidates where FileOps.exists(directory + "/" + SegmentNames.sealed(c.segment)) {
            let info = try Self.peekSealed(directory + "/" + SegmentNames.sealed(c.segment), segment: c.segment)
            guard info.firstSeq == c.firstSeq, info.endSeq == c.endSeq else { continue }
            lock.withLock { if let i = sealed.firstIndex(where: { $0.segment == c.segment }) { sealed[i] = info } }
            restored.append(info)
        }
        return restored
    }

    /// Reads just enough of a sealed file (header, trailer, footer prefix) to list it.
    static func peekSealed(_ path: String, segment: UInt64) throws(AuditError) -> SegmentInfo {
        let fd = try FileOps.open(path, O_RDONLY)
        defer { close(fd) }
        let size = try FileOps.size(fd, path: path)
        guard size >= Int64(SegmentFormat.headerSize + SegmentFormat.trailerSize) else {
            throw AuditError(.corrupt, "sealed segment is truncated (\(size) bytes)", path: path, offset: 0)
        }
        let header = try SegmentHeader.parse(
            try FileOps.preadExact(fd, count: SegmentFormat.headerSize, at: 0, path: path), path: path)
        let (fOff, fLen, _) = try SegmentTrailer.read(fd: fd, fileSize: size, path: path)
        guard fLen >= 32 else {
            throw AuditError(.corrupt, "sealed segment footer is too short (\(fLen) bytes)", path: path, offset: fOff)
        }
        var f = ByteReader(try FileOps.preadExact(fd, count: 32, at: fOff, path: path))
        do {
            guard SegmentFormat.footerHasDictionary(magic: try f.read(count: 8)) != nil else {
                throw AuditError(.corrupt, "sealed segment footer: bad magic", path: path, offset: fOff)
            }
            let seg = try f.readU64()
            let first = try f.readU64()
            let last = try f.readU64()
            guard seg == segment, header.segment == segment, first == header.firstSeq, last >= first,
                last < SegmentFormat.maxSeq
            else {
                throw AuditError(
                    .corrupt, "header, footer and file name disagree on segment \(segment)", path: path, offset: fOff)
            }
            return SegmentInfo(segment: segment, state: .sealed, path: path, firstSeq: first, endSeq: last + 1)
        } catch let e as AuditError {
            throw e
        } catch {
            throw AuditError(.corrupt, "sealed segment footer is cut short", path: path, offset: fOff)
        }
    }
}
