import AuditBase
import AuditEntries
import AuditIndex
import LogProofs
import LogTree
import SegmentStore

/// Settings of a ledger.
public struct LedgerOptions: Sendable {
    /// The keys a new data directory records (its first key and the successions since): a
    /// log recovered from the bucket after its key was handed on. Ignored for an existing log.
    public var keys: LogKeys?
    /// Segment store tuning.
    public var store = SegmentStoreOptions()
    /// The tier that retires sealed segments from the directory (the archive); without it, a
    /// directory whose segments left cannot be opened (the store finds them missing).
    public var retired: any RetiredTier = HotTierOnly()
    /// Sign a checkpoint at least this often while entries arrive.
    public var checkpointInterval: Duration = .seconds(1)
    /// Run the checkpoint ticker and the sealer on background threads.
    public var background = true
    /// The sealer's nice value, below the writers' (its compression threads inherit it): at
    /// the writers' own, each seal took the cores from the event loops and the commit thread,
    /// and acks waited during seals (100,000 entries/s offered: p99 6-30 ms, 6-17 ms with the
    /// sealer at nice 10). A sealer that falls behind under full load is met by the slowdown
    /// (`SegmentStoreOptions.slowdownBacklog`), not at once by a seal on the commit thread
    /// that holds every ack. A bulk load, which no one waits on, seals at its own priority.
    public var sealerNice: Int32 = 10
    /// Most entries in one group commit.
    public var maxGroup = 8192
    /// Where the signer records the newest checkpoint it signed (`SignerState`, beside the
    /// signing key); nil keeps no record (tests, in-memory keys).
    public var signerState: String?
    /// Commit personal fields (format-spec.md §5.4): entries prepared with `Ledger.subjectKeys`
    /// store commitments, their values go to the personal store. False: stored as sent. Given,
    /// it is recorded in `log.json` as the log's setting; nil follows what the log records
    /// (clear for a log that records nothing).
    public var protectPersonalFields: Bool?
    /// Called for each group commit once its acks are out (with the work that follows them,
    /// on the thread that committed it), with its entry count and the time its write and
    /// fdatasync took (for metrics; keep it cheap).
    public var onCommit: (@Sendable (Int, Duration) -> Void)?
    /// Called when the commit thread held the next group for the sealer (writes outrunning
    /// it): how long, and whether it sealed a segment itself (back-pressure, the backlog at
    /// its bound) rather than waited for the sealer (slowdown). For metrics; keep it cheap.
    public var onSealerWait: (@Sendable (Duration, _ sealedHere: Bool) -> Void)?

    /// The defaults.
    public init() {}
}

/// The durable acknowledgement of one entry.
public struct Receipt: Sendable, Equatable {
    /// Its sequence number.
    public var seq: UInt64
    /// Its leaf hash (the entry's hash).
    public var hash: Hash
    /// Its position in its org's chain.
    public var orgSeq: UInt64

    /// A receipt.
    public init(seq: UInt64, hash: Hash, orgSeq: UInt64) {
        self.seq = seq
        self.hash = hash
        self.orgSeq = orgSeq
    }
}

/// What `Ledger.open` found and repaired.
public struct LedgerRecovery: Sendable, CustomStringConvertible {
    /// The segment store's report on the open segment.
    public var store: RecoveryReport
    /// Entries re-read to rebuild tree hashes and the in-memory index.
    public var replayed: UInt64
    /// Index files written for sealed segments that lacked one.
    public var indexesRebuilt: Int
    /// One line per finding.
    public var description: String {
        "\(store); replayed \(replayed) entries" + (indexesRebuilt > 0 ? "; rebuilt \(indexesRebuilt) index files" : "")
    }
}

/// No tier beyond the hot directory: nothing was retired, nothing restored.
public struct HotTierOnly: RetiredTier {
    /// The hot tier alone.
    public init() {}

    /// None.
    public func retired(inSegments segments: String, readOnly: Bool) throws -> [RetiredSegment] { [] }

    /// Never asked: no segment is retired.
    public func summary(of info: SegmentInfo) throws -> RetiredSummary {
        throw AuditError(
            .invalidArgument, "segment \(info.segment) is retired, but no archive tier was given", path: info.path)
    }

    /// None.
    public func restored(inSegments segments: String) throws -> [UInt64] { [] }
}
