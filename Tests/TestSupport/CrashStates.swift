import AuditBase
import Foundation

/// Records every durable file operation under one directory (with the bytes written) and
/// rebuilds the directory as a crash after any prefix of them could have left it.
///
/// The model, per file: its *current* bytes (what the page cache holds) and its *durable*
/// bytes (as of its last fsync/fdatasync); per name: its current binding and its durable one
/// (as of the last fsync of its directory). A crash state is a prefix of the operations and
/// one of three outcomes for what was not yet synced: all of it reached the disk; the names
/// did but unsynced file data did not; nothing unsynced did.
public final class CrashRecorder: FileInterceptor, @unchecked Sendable {
    /// What survives of operations that were not synced.
    public enum Survival: CaseIterable, Sendable {
        /// Everything written reached the disk.
        case everything
        /// Names (creations, renames, unlinks) survived; unsynced file data did not.
        case namesOnly
        /// Only what was synced survived.
        case syncedOnly
    }

    private struct Op {
        var op: FileOperation
        var bytes: [UInt8]
        var thread: String
    }

    private let lock = NSLock()
    /// Held from `before` to `after` (or `failed`): operations of several threads are recorded
    /// in the order they happened, never in the order their threads got round to saying so.
    private let serial = NSLock()
    private var ops: [Op] = []
    private let root: String

    /// Records under `root`, which must be empty when recording starts.
    public init(root: String) { self.root = root }

    /// Operations recorded so far.
    public var count: Int { lock.withLock { ops.count } }

    public func before(_ op: FileOperation) -> FileFault {
        serial.lock()
        return .proceed
    }

    public func failed(_ op: FileOperation) { serial.unlock() }

    public func after(_ op: FileOperation, bytes: UnsafeRawBufferPointer?) {
        defer { serial.unlock() }
        let copy = bytes.map { Array($0) } ?? []
        let thread =
            (Thread.current.name.map { $0.isEmpty ? "" : $0 + " " } ?? "") + "t\(UInt(pthread_self()) % 100_000)"
        lock.withLock { ops.append(Op(op: op, bytes: copy, thread: thread)) }
    }

    /// Operations `range` in words (with the thread that made each), for failure messages.
    public func describe(_ range: Range<Int>) -> [String] {
        lock.withLock {
            range.clamped(to: 0..<ops.count).map { i in
                "\(i + 1): \(ops[i].op) [\(ops[i].thread)]".replacingOccurrences(of: root, with: "")
            }
        }
    }

    private final class Inode {
        var current: [UInt8] = []
        var durable: [UInt8] = []
        var mode: mode_t = 0o640
    }

    private static func parent(_ p: String) -> String { FileOps.directory(of: p) }

    /// Writes, into the empty directory `target`, the state of `root` after a crash right
    /// after operation `prefix` (0: before any), with `survival` deciding what unsynced work
    /// left behind.
    public func materialize(prefix: Int, survival: Survival, into target: String) throws {
        let all = lock.withLock { Array(ops.prefix(prefix)) }
        var names: [String: Inode] = [:]
        var durableNames: [String: Inode] = [:]
        var dirs: Set<String> = [root]
        var durableDirs: Set<String> = [root]
        for o in all {
            switch o.op {
            case .mkdir(let p):
                dirs.insert(p)
            case .create(let p):
                if names[p] == nil { names[p] = Inode() }
            case .write(let p, let offset, _):
                guard let n = names[p] else { continue }
                let end = Int(offset) + o.bytes.count
                if n.current.count < end { n.current += [UInt8](repeating: 0, count: end - n.current.count) }
                n.current.replaceSubrange(Int(offset)..<end, with: o.bytes)
            case .truncate(let p, let length):
                guard let n = names[p] else { continue }
                let len = Int(length)
                if n.current.count > len {
                    n.current.removeSubrange(len...)
                } else {
                    n.current += [UInt8](repeating: 0, count: len - n.current.count)
                }
            case .sync(let p):
                if let n = names[p] { n.durable = n.current }
            case .syncDirectory(let d):
                for (p, n) in names where Self.parent(p) == d { durableNames[p] = n }
                for p in durableNames.keys where Self.parent(p) == d && names[p] == nil { durableNames[p] = nil }
                for p in dirs where Self.parent(p) == d { durableDirs.insert(p) }
            case .rename(let a, let b):
                names[b] = names[a]
                names[a] = nil
            case .unlink(let p):
                names[p] = nil
            case .chmod(let p, let mode):
                names[p]?.mode = mode
            }
        }
        let (finalNames, finalDirs): ([String: Inode], Set<String>) =
            survival == .syncedOnly ? (durableNames, durableDirs) : (names, dirs)
        func relocate(_ p: String) -> String { target + p.dropFirst(root.count) }
        for d in finalDirs.sorted() {
            try FileManager.default.createDirectory(atPath: relocate(d), withIntermediateDirectories: true)
        }
        for (p, n) in finalNames {
            // A name whose directory did not survive goes with it.
            guard finalDirs.contains(Self.parent(p)) else { continue }
            let bytes = survival == .everything ? n.current : n.durable
            FileManager.default.createFile(
                atPath: relocate(p), contents: Data(bytes), attributes: [.posixPermissions: Int(n.mode)])
        }
    }
}
