import AuditEntries
import AuditIndex
import LogTree

/// Whether the log takes writes (format-spec.md §3), as a state machine driven by the commit
/// thread. Everything that can fail *after* the fdatasync covering a group (the tree files,
/// rotation, the checkpoint log) leaves those entries durable and acknowledged: the log then
/// suspends writes until that deferred work succeeds on a retry. A failed fdatasync is final
/// until a restart (the page cache can no longer be trusted).
public enum WriteState: Sendable, Equatable, CustomStringConvertible {
    /// Taking writes.
    case accepting
    /// Durable entries were acknowledged, but work that must follow them failed: new entries
    /// are refused until a retry of that work succeeds (each maintenance tick retries).
    case suspended(String)
    /// A sync failed: every write is refused until a restart recovers the log.
    case failed(String)

    /// What a refused writer is told.
    public var description: String {
        switch self {
        case .accepting: return "accepting writes"
        case .suspended(let why):
            return
                "writes suspended until storage recovers (\(why)); free space or fix the disk, and writes resume on their own"
        case .failed(let why): return "writes stopped after a failed sync (\(why)); restart auditd to recover"
        }
    }

    /// True when new entries are taken.
    public var isAccepting: Bool { self == .accepting }

    /// A failure of work that followed a durable sync.
    mutating func deferredWorkFailed(_ error: Error) {
        if case .failed = self { return }
        self = .suspended("\(error)")
    }

    /// A failed fdatasync.
    mutating func syncFailed(_ error: Error) { self = .failed("\(error)") }

    /// The deferred work succeeded on a retry.
    mutating func resumed() {
        if case .suspended = self { self = .accepting }
    }
}
