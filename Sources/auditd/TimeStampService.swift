import AuditBase
import AuditEntries
import ChainIndex
import Foundation
import LogProofs
import Logging
import Metrics
import ServiceLifecycle
import TimeStamping

/// Time that does not rest on the operator's clock (format-spec.md §8.7): every interval, the
/// newest published checkpoint is sent to each RFC 3161 authority; a token that verifies
/// against the trust file is appended to the log (`TimeStampRecords`) and then indexed in
/// `checkpoints/timestamps` for exports. An
/// authority that is down or answers wrongly costs only its own attempt: ingest never waits,
/// `/healthz` says degraded.
final class TimeStamper: @unchecked Sendable {
    /// Bounds on one exchange with an authority.
    static let answerLimit = 64 << 10
    static let deadline = Duration.seconds(30)

    let authorities: [URL]
    let trust: TimeStampTrust
    let journal: TimeStampJournal
    let ledger: Ledger
    let failures = Counter(label: "auditd_timestamp_failures_total")
    let tokens = Counter(label: "auditd_timestamps_total")
    let stampedSize = Gauge(label: "auditd_timestamped_checkpoint_size")
    private let lock = NSLock()
    private var _failing: [String: String] = [:]
    /// The size of the checkpoint each authority last stamped.
    private var stamped: [String: UInt64] = [:]
    /// The seqs of the token entries this process appended (any authority's), in order: a
    /// tree grown only by them holds nothing new to stamp.
    private var own: [UInt64] = []

    init(ledger: Ledger, authorities: [String], trustFile: String, journal: TimeStampJournal) throws {
        self.ledger = ledger
        self.authorities = authorities.compactMap(URL.init(string:))
        do { trust = try TimeStampTrust(file: trustFile) } catch {
            throw AuditError(.invalidArgument, "timestamp_trust: \(error)")
        }
        self.journal = journal
    }

    /// Authorities whose last attempt failed, in words (nil when none).
    var failing: String? {
        lock.withLock {
            _failing.isEmpty ? nil : _failing.sorted { $0.key < $1.key }.map { "\($0): \($1)" }.joined(separator: "; ")
        }
    }

    /// Whether `authority` should stamp a tree of `size`: it failed last time, or the tree
    /// holds entries since the one it last stamped besides the tokens' own; never the same
    /// tree twice.
    func isDue(_ authority: String, size: UInt64) -> Bool {
        lock.withLock {
            let from = stamped[authority] ?? 0
            guard size > from || (_failing[authority] != nil && stamped[authority] != size) else { return false }
            if _failing[authority] != nil { return true }
            let tokens = own.filter { $0 >= from && $0 < size }.count
            return size - from > UInt64(tokens)
        }
    }

    /// Stamps `cp` with `url` if it is due. Each authority runs its own loop, so that one that
    /// is slow or down costs only its own attempts (30 s at most each), never another's.
    func stampIfDue(_ cp: SignedCheckpoint, by url: URL, logger: Logger) async {
        let a = url.absoluteString
        let size = cp.checkpoint.size
        guard isDue(a, size: size) else { return }
        do {
            let (stamp, seq) = try await stamp(cp, by: url)
            tokens.increment()
            stampedSize.record(Int64(stamp.size))
            lock.withLock {
                _failing[a] = nil
                stamped[a] = size
                own.append(seq)
                own.sort()
                // Seqs below every authority's last stamped tree no longer count.
                if let low = authorities.map({ stamped[$0.absoluteString] ?? 0 }).min() { own.removeAll { $0 < low } }
            }
        } catch {
            failures.increment()
            lock.withLock { _failing[a] = "\(error)" }
            logger.warning(
                "no time-stamp token", metadata: ["authority": "\(url)", "size": "\(size)", "error": "\(error)"])
        }
    }

    /// One token over `cp` from `url`, checked, recorded in the log and kept: what was kept and
    /// the seq of its entry.
    func stamp(_ cp: SignedCheckpoint, by url: URL) async throws -> (StampedCheckpoint, UInt64) {
        let digest = TimeStampImprint.digest(cp.checkpoint)
        let nonce = try SecureRandom.bytes(TimeStampRequest.nonceSize)
        guard let query = TimeStampRequest.der(digest: digest, nonce: nonce) else {
            throw AuditError("cannot build the time-stamp request")
        }
        let status: Int
        let body: Data
        do {
            (status, body) = try await BoundedPost.post(
                url, body: Data(query), contentType: "application/timestamp-query", limit: Self.answerLimit,
                deadline: Self.deadline)
        } catch { throw AuditError(.failed, "unreachable: \(error)") }
        guard status == 200 else { throw AuditError(.failed, "answered HTTP \(status), not a time-stamp response") }
        let token = try TimeStampToken.fromResponse(Array(body))
        // Checked before anything is recorded: an entry whose token the file cannot keep
        // would be a token no export carries.
        guard token.count <= TimeStampJournal.maxToken else {
            throw AuditError(.failed, "its token is \(token.count) bytes, over the \(TimeStampJournal.maxToken) kept")
        }
        let checked = try TimeStampToken.verify(token, digest: digest, trust: trust, nonce: nonce)
        let entry = try TimeStampRecords.entry(
            cp.checkpoint, authority: url.absoluteString, time: checked.time, token: token, signer: checked.signer,
            serial: checked.serial)
        let prepared = try Entry.prepare(
            json: entry, receivedAt: ReceivedAt.now(), writer: Writer(uid: getuid(), gid: getgid(), via: "auditd"),
            keys: ledger.subjectKeys)
        guard let r = try await ledger.append([prepared]).first else { throw AuditError("the log stored no entry") }
        // The tokens file follows the entries (the one home of what a token's entry holds).
        try TimeStampRecords.catchUp(journal, ledger: ledger)
        return (
            StampedCheckpoint(
                entry: r.seq, size: cp.checkpoint.size, root: cp.checkpoint.root, authority: url.absoluteString,
                time: checked.time, token: token), r.seq
        )
    }
}

/// Asks each authority, in a loop of its own, for a token over the newest published
/// checkpoint every `interval`.
struct TimeStampService: Service {
    let stamper: TimeStamper
    let publication: Publication
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for url in stamper.authorities {
                group.addTask {
                    while !Task.isShuttingDownGracefully && !Task.isCancelled {
                        if let cp = publication.latest { await stamper.stampIfDue(cp, by: url, logger: logger) }
                        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
                    }
                }
            }
        }
    }
}
