import AuditBase
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Fails chosen durable file operations under one directory (through `FileOps`' seam).
public final class FaultPlan: FileInterceptor, @unchecked Sendable {
    private let lock = NSLock()
    private var rules: [(match: (FileOperation) -> Bool, fault: FileFault, skip: Int, times: Int)] = []
    private var seen = 0
    private var log: [FileOperation] = []

    public init() {}

    /// Fails operations matching `match` with `fault`, after letting `skip` of them through,
    /// `times` times (`Int.max`: until cleared).
    public func add(
        _ fault: FileFault, skip: Int = 0, times: Int = Int.max, where match: @escaping (FileOperation) -> Bool
    ) {
        lock.withLock { rules.append((match, fault, skip, times)) }
    }

    /// Fails the `n`th operation (counting from 0) of any kind with `fault`.
    public func failNth(_ n: Int, with fault: FileFault) {
        add(fault, skip: n, times: 1) { _ in true }
    }

    /// Lets everything through from now on.
    public func clear() { lock.withLock { rules.removeAll() } }

    /// Operations seen so far (before their outcome).
    public var operations: [FileOperation] { lock.withLock { log } }

    public func before(_ op: FileOperation) -> FileFault {
        lock.withLock {
            log.append(op)
            seen += 1
            for i in rules.indices where rules[i].match(op) {
                if rules[i].skip > 0 {
                    rules[i].skip -= 1
                    continue
                }
                guard rules[i].times > 0 else { continue }
                rules[i].times -= 1
                if case .shortWrite = rules[i].fault, case .write = op { return rules[i].fault }
                if case .shortWrite = rules[i].fault { return .fail(ENOSPC) }
                return rules[i].fault
            }
            return .proceed
        }
    }

    public func after(_ op: FileOperation, bytes: UnsafeRawBufferPointer?) {}
}

extension FileOperation {
    /// True for a write to a file whose name ends in `suffix`.
    public func isWrite(to suffix: String) -> Bool {
        if case .write(let p, _, _) = self { return p.hasSuffix(suffix) }
        return false
    }
    /// True for a sync of a file whose name ends in `suffix`.
    public func isSync(of suffix: String) -> Bool {
        if case .sync(let p) = self { return p.hasSuffix(suffix) }
        return false
    }
}
