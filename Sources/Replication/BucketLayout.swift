import SegmentStore

/// The names of what replication keeps in the bucket beside the bundles (format-spec.md §12.6),
/// in one place. Every name is under the archive's prefix.
///
///     tail/SEGMENT/FIRST-END     the durable bytes of an unsealed segment holding entries [FIRST, END)
///     checkpoint/SIZE            a signed checkpoint the bucket backs (every entry it covers is held)
///     key-succession/H           a statement handing the log's key on at tree size H (§8.8)
///
/// Numbers are written with 20 digits, so that names sort as numbers do.
public enum BucketLayout {
    /// The folder of segment `n`'s tail objects.
    public static func tailFolder(_ n: UInt64) -> String { "tail/" + SegmentNames.digits(n) + "/" }

    /// The tail object of segment `n` holding entries `[first, end)`.
    public static func tail(segment n: UInt64, first: UInt64, end: UInt64) -> String {
        tailFolder(n) + SegmentNames.digits(first) + "-" + SegmentNames.digits(end)
    }

    /// The segment and entry range a tail object's name gives, or nil for another name.
    public static func parseTail(_ name: String) -> (segment: UInt64, first: UInt64, end: UInt64)? {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "tail", parts[1].count == 20, let n = UInt64(parts[1]) else { return nil }
        let range = parts[2].split(separator: "-", omittingEmptySubsequences: false)
        guard range.count == 2, range[0].count == 20, range[1].count == 20, let f = UInt64(range[0]),
            let e = UInt64(range[1]), f < e
        else { return nil }
        return (n, f, e)
    }

    /// The folder of the checkpoints.
    public static let checkpointFolder = "checkpoint/"

    /// The checkpoint object of tree size `size`.
    public static func checkpoint(size: UInt64) -> String { checkpointFolder + SegmentNames.digits(size) }

    /// The folder of the key successions.
    public static let successionFolder = "key-succession/"

    /// The statement object of the handover at tree size `handover`.
    public static func succession(handover: UInt64) -> String {
        successionFolder + SegmentNames.digits(handover)
    }

    /// The tree size a checkpoint object's name gives, or nil for another name.
    public static func parseCheckpoint(_ name: String) -> UInt64? {
        guard name.hasPrefix(checkpointFolder) else { return nil }
        let rest = name.dropFirst(checkpointFolder.count)
        guard rest.count == 20 else { return nil }
        return UInt64(rest)
    }
}
