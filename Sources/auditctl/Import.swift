import Archive
import ArgumentParser
import AuditBase
import AuditEntries
import ChainIndex
import Foundation
import LogProofs
import SegmentStore

#if canImport(Glibc)
import Glibc
#endif

/// `auditctl import DIR`: bulk-appends NDJSON events from standard input.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append NDJSON audit events from standard input to a data directory.",
        discussion: """
            Each line is one entry as a writer would send it. Bad lines are reported with their
            line number and skipped; the exit status is 3 if any were. Refuses a directory that
            a running auditd holds. Ends with a signed checkpoint.
            """)

    @Argument(help: "The data directory (created if missing).")
    var dir: String

    @Option(
        help: "The signing key (created, mode 0600, if missing). Default: <parent of DIR>/auditd-keys/<DIR name>.key")
    var key: String?

    @Option(help: "The log's origin (checkpoint origin line and key name) when creating a key.")
    var origin = "auditd.local/log"

    @Option(help: "Entries per group commit.")
    var batch = 2048

    @Option(help: "Rotate and seal the open segment once it holds this many bytes.")
    var segmentBytes = SegmentStoreOptions().rotateBytes

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    @Flag(help: "Print a JSON receipt {\"seq\",\"hash\"} on standard output for each entry as soon as it is durable.")
    var receipts = false

    func run() throws {
        let keyPath = key ?? DataDirectory(dir).defaultKey
        let (signer, created, note) = try Ledger.signingKey(at: keyPath, directory: dir, createNamed: origin)
        if let note { printError("auditctl: \(note)") }
        if created && !quiet { printError("created signing key \(keyPath) (verifier key \(signer.verifier.text))") }
        let ledger: Ledger
        var options = LedgerOptions()
        options.retired = ArchiveTier()
        options.signerState = SignerState.path(forKey: keyPath)
        options.store.rotateBytes = max(4096, segmentBytes)
        // Nobody waits on an import's acks: its sealer keeps the writer's priority, and the
        // writer seals once two segments wait (the least memory), with no slowdown before.
        options.sealerNice = ThreadPriority.current()
        options.store.maxRotatedBacklog = 2
        options.store.slowdownBacklog = 2
        do { ledger = try Ledger(directory: dir, signer: signer, options: options) } catch let e as AuditError
            where e.code == .locked
        {
            throw CLIError(
                "\(dir) is in use by another process (is auditd running on it?); stop it or append through its socket")
        }
        if ledger.recovery.store.bytesCut > 0 || ledger.recovery.replayed > 0, !quiet {
            printError(ledger.recovery.description)
        }
        let startSize = ledger.size
        let started = Date()
        let writer = Writer(uid: getuid(), gid: getgid(), via: "import")
        let keys = ledger.subjectKeys
        let inflight = DispatchSemaphore(value: 4)
        let state = ImportState()
        var lineNo = 0
        var lines: [[UInt8]] = []
        lines.reserveCapacity(batch)
        var lineNumbers: [Int] = []

        func submit() {
            guard !lines.isEmpty else { return }
            let n = lines.count
            let now = ReceivedAt.now()
            var results = [Result<PreparedEntry, EntryError>?](repeating: nil, count: n)
            let input = lines
            results.withUnsafeMutableBufferPointer { rb in
                nonisolated(unsafe) let out = rb
                let workers = min(n, max(1, ProcessInfo.processInfo.activeProcessorCount))
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    for i in (w * n / workers)..<((w + 1) * n / workers) {
                        do throws(EntryError) {
                            out[i] = .success(
                                try Entry.prepare(json: input[i], receivedAt: now, writer: writer, keys: keys))
                        } catch { out[i] = .failure(error) }
                    }
                }
            }
            var good: [PreparedEntry] = []
            good.reserveCapacity(n)
            for (i, r) in results.enumerated() {
                switch r {
                case .success(let e): good.append(e)
                case .failure(let e): state.reject("line \(lineNumbers[i]): \(e)")
                case nil: break
                }
            }
            lines.removeAll(keepingCapacity: true)
            lineNumbers.removeAll(keepingCapacity: true)
            guard !good.isEmpty else { return }
            inflight.wait()
            let printReceipts = receipts
            ledger.append(good) { r in
                if printReceipts, case .success(let rs) = r {
                    var out = ""
                    for x in rs { out += "{\"seq\":\(x.seq),\"hash\":\"\(x.hash.hex)\"}\n" }
                    // A reader that went away costs the receipts, not the import (it goes on).
                    try? FileHandle.standardOutput.write(contentsOf: Data(out.utf8))
                }
                state.finish(r)
                inflight.signal()
            }
        }

        var buffer = [UInt8]()
        let chunk = 1 << 20
        var readBuf = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = read(0, &readBuf, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIError("cannot read standard input: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            buffer.append(contentsOf: readBuf[0..<n])
            var start = 0
            while let nl = buffer[start...].firstIndex(of: 0x0A) {
                lineNo += 1
                let line = Array(buffer[start..<nl])
                start = nl + 1
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
                lines.append(line)
                lineNumbers.append(lineNo)
                if lines.count >= batch { submit() }
            }
            buffer.removeSubrange(0..<start)
            if !quiet && state.accepted > 0 && state.accepted % 100_000 < UInt64(batch) {
                state.progress(started)
            }
        }
        if !buffer.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) {
            lineNo += 1
            lines.append(buffer)
            lineNumbers.append(lineNo)
        }
        submit()
        for _ in 0..<4 { inflight.wait() }
        for _ in 0..<4 { inflight.signal() }  // libdispatch traps if a semaphore dies below its start value
        try ledger.close()
        let secs = Date().timeIntervalSince(started)
        if let e = state.error {
            throw CLIError("import stopped: \(e); \(state.accepted) entries were made durable before it")
        }
        if !quiet && !receipts {
            let cp = ledger.latestCheckpoint?.checkpoint.size ?? 0
            print(
                "imported \(state.accepted) entries (seq \(startSize)..<\(startSize + state.accepted)) in \(String(format: "%.2f", secs)) s, \(Int(Double(state.accepted) / max(secs, 0.001))) entries/s; \(state.rejected) rejected; checkpoint at size \(cp)"
            )
        }
        if state.rejected > 0 { throw ExitCode(3) }
    }
}

final class ImportState: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var accepted: UInt64 = 0
    private(set) var rejected = 0
    private(set) var error: Error?

    func reject(_ message: String) {
        let n = lock.withLock {
            rejected += 1
            return rejected
        }
        if n <= 100 {
            printError("rejected \(message)")
        } else if n == 101 {
            printError("(further rejections not shown)")
        }
    }

    func finish(_ r: Result<[Receipt], Error>) {
        lock.withLock {
            switch r {
            case .success(let rs): accepted += UInt64(rs.count)
            case .failure(let e): if error == nil { error = e }
            }
        }
    }

    func progress(_ since: Date) {
        let a = lock.withLock { accepted }
        printError("… \(a) entries (\(Int(Double(a) / max(Date().timeIntervalSince(since), 0.001)))/s)")
    }
}
