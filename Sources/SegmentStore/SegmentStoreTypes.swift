import AuditBase
import Foundation

/// Tuning of the segment store. The defaults suit the daemon.
public struct SegmentStoreOptions: Sendable {
    /// Rotate the open segment once it holds this many raw record bytes.
    public var rotateBytes: Int = 32 << 20
    /// Rotate the open segment once it is this old and non-empty.
    public var rotateAge: Duration = .seconds(600)
    /// Target raw size of a sealed block.
    public var blockTarget: Int = 64 << 10
    /// zstd level of open-segment blocks (speed matters: they sit on the ack path).
    public var openLevel: Int32 = 1
    /// Open-segment blocks of fewer raw bytes are stored in raw zstd blocks, not compressed: a
    /// lone writer's one-entry block took 9 µs of the ack path to compress at level 1, most of
    /// it setting up the context, and saved a hundred bytes the seal recompresses anyway.
    public var openStoreBelow: Int = 4 << 10
    /// Zero bytes kept filled ahead of the open segment's last block (`fillAhead()`), at most
    /// `rotateBytes`; 0 for none.
    public var fillAhead: Int = 1 << 20
    /// zstd level of sealed blocks (written once, read for years), with `Zstd.tuned`'s parameters.
    public var sealLevel: Int32 = 5
    /// Largest zstd dictionary a sealed segment's blocks are compressed with (trained on the
    /// segment's records, kept in its footer); 0 for none.
    public var dictionarySize: Int = 64 << 10
    /// Threads that compress a sealed segment's blocks at once (the file is the same whatever
    /// their number): the cores, at most 4. Ingest waits for the seal once two rotated
    /// segments wait (`maxRotatedBacklog`), so a seal on one core held it to that core's pace.
    public var sealThreads: Int = min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))
    /// Rotated segments allowed to wait for the sealer; beyond that the writer seals one
    /// itself (back-pressure: memory stays bounded when writes outrun sealing). That seal
    /// holds every ack for its whole length (up to half a second at full load), so
    /// `slowdownBacklog` is meant to keep the backlog from reaching this bound.
    public var maxRotatedBacklog: Int = 3
    /// Rotated segments beyond which each group commit first waits for the sealer, up to
    /// `slowdownWait` (`SegmentStore.waitForSealer()`): writes outrunning a sealer that runs
    /// at a lower priority than theirs slow down a little at a time, and the idle cores that
    /// leaves go to the seal, instead of every ack waiting for a seal on the commit thread.
    public var slowdownBacklog: Int = 2
    /// Longest wait of one group commit for the sealer when the backlog is over
    /// `slowdownBacklog`.
    public var slowdownWait: Duration = .milliseconds(10)

    /// The defaults.
    public init() {}
}

/// Where a segment stands in its life.
public enum SegmentState: String, Sendable {
    /// Being appended to.
    case open
    /// Rotated out, synced, waiting to be sealed.
    case rotated
    /// Sealed: immutable, mode 0444.
    case sealed
    /// Retired: its records left this directory, as the store's caller said (`RetiredSegment`).
    case retired
}

/// A segment whose records left the store's directory, named by the store's caller (which
/// keeps its own marker of where they went): the store keeps its place in the sequence, and
/// reads of it say it was retired instead of finding a gap.
public struct RetiredSegment: Sendable, Equatable {
    /// The segment number.
    public var segment: UInt64
    /// First sequence number.
    public var firstSeq: UInt64
    /// One past the last.
    public var endSeq: UInt64
    /// The caller's marker file, named in errors.
    public var path: String
    /// Where the records went, opaque to the store (kept in `SegmentInfo.label`).
    public var label: String
    /// What a reader can do to get them back, appended to errors about them.
    public var hint: String

    /// A retired segment.
    public init(segment: UInt64, firstSeq: UInt64, endSeq: UInt64, path: String, label: String, hint: String) {
        self.segment = segment
        self.firstSeq = firstSeq
        self.endSeq = endSeq
        self.path = path
        self.label = label
        self.hint = hint
    }
}

/// A segment as listed by the store.
public struct SegmentInfo: Sendable, Equatable {
    /// The segment number.
    public var segment: UInt64
    /// Its state.
    public var state: SegmentState
    /// Its file.
    public var path: String
    /// First sequence number.
    public var firstSeq: UInt64
    /// One past the last sequence number it holds.
    public var endSeq: UInt64
    /// For a retired segment, where its records went (`RetiredSegment.label`).
    public var label: String? = nil
    /// For a retired segment, how to get its records back (`RetiredSegment.hint`).
    public var hint: String? = nil

    /// A segment's description.
    public init(
        segment: UInt64, state: SegmentState, path: String, firstSeq: UInt64, endSeq: UInt64, label: String? = nil,
        hint: String? = nil
    ) {
        self.segment = segment
        self.state = state
        self.path = path
        self.firstSeq = firstSeq
        self.endSeq = endSeq
        self.label = label
        self.hint = hint
    }

    /// What a read of this retired segment is told.
    var retiredMessage: String {
        "entries \(firstSeq)..<\(endSeq) (segment \(segment)) were retired from this directory to \(label ?? "?")"
            + (hint.map { "; \($0)" } ?? "")
    }
}
