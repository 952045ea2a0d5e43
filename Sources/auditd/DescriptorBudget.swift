import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// Descriptors are shared by everything in the process: writers, readers, and the files the
/// log itself must open (segments, the tree, checkpoint and signer state). A flood of one kind
/// of peer must never leave storage without one, or signing a checkpoint fails and every
/// writer is refused. So the connection caps and a reserve for storage must fit the limit.
enum DescriptorBudget {
    /// Descriptors kept for storage, the witnesses, the archive and the daemon's own files.
    static let storageReserve = 256

    /// Raises the soft RLIMIT_NOFILE to the hard limit, then checks that both connection caps
    /// and the storage reserve fit. Returns the limit in force.
    @discardableResult
    static func check(ingest: Int, read: Int) throws -> Int {
        var l = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &l) == 0 else { return Int.max }
        if l.rlim_cur < l.rlim_max {
            var raised = l
            raised.rlim_cur = l.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { l = raised }
        }
        let limit = Int(clamping: l.rlim_cur)  // RLIM_INFINITY is the largest value: no limit
        let need = ingest + read + storageReserve
        guard need <= limit else {
            throw ValidationError(
                "max_connections \(ingest) + http_max_connections \(read) + \(storageReserve) descriptors kept for storage = \(need), more than this process may open (\(limit)); lower the caps or raise the limit (LimitNOFILE= in the unit, ulimit -n)"
            )
        }
        return limit
    }
}
