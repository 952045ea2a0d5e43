import Archive
import AuditBase
import AuditEntries
import AuditIndex
import Foundation
import LogTree
import SegmentStore

/// Posting lists are derived data, checked as such (format-spec.md §7.3, §10): below the
/// watermark, each record of a sealed segment in the hot tier must be that segment's index
/// file row, its section's place in the file included (the index file itself being checked
/// against the entries); each of an archived segment must agree with its stub's signed
/// summary; a purged segment's must be marked purged; and every org's record of every sealed
/// segment must be there. Nothing binds the watermark: it only says what was synced. Above it, the next start
/// derives every record again before anything is served, so when nobody serves the directory
/// nothing is asked of those records; while a daemon serves it (`served`), it answers
/// queries from them, so each whole one is checked as those below are (a missing one is not:
/// the daemon may be writing it).
public enum PostingCheck {
    /// Checks the posting lists under `indexDirectory` against `segments` (the store's);
    /// `served` when a running daemon answers queries from them.
    public static func check(indexDirectory: String, segments: [SegmentInfo], served: Bool) -> VerificationFailure? {
        let dir = indexDirectory + "/" + PostingLists.directoryName
        guard FileOps.exists(dir) else { return nil }
        func fail(_ path: String, _ offset: Int64?, _ m: String) -> VerificationFailure {
            VerificationFailure(seq: nil, path: path, offset: offset, message: m)
        }
        var done: UInt64
        do { done = try PostingLists.loadWatermark(dir + "/watermark") } catch {
            return fail(dir + "/watermark", 0, (error as? AuditError)?.message ?? "\(error)")
        }
        var hot: [UInt64: SealedIndex] = [:]
        var sealed: Set<UInt64> = []
        // Beside a running daemon, segments after the first one not sealed in `segments` may
        // have been sealed since: their records are not judged from this view.
        let horizon = segments.first { $0.state == .open || $0.state == .rotated }?.segment ?? .max
        var stubs: [UInt64: ArchivedStub] = [:]
        do {
            for info in segments {
                switch info.state {
                case .sealed:
                    sealed.insert(info.segment)
                    let path = indexDirectory + "/" + OrgIndex.fileName(info.segment)
                    do { hot[info.segment] = try SealedIndex(path: path) } catch let e as AuditError {
                        // Gone: archived since `segments` was read, or rebuilt at the next start.
                        if FileOps.exists(path) { throw e }
                    }
                case .retired: stubs[info.segment] = try ArchivedStub.load(info.path)
                case .open, .rotated: break
                }
            }
        } catch {
            let e = error as? AuditError
            return fail(e?.path ?? indexDirectory, e?.offset, e?.message ?? "\(error)")
        }
        done = min(done, horizon)
        let names: [String]
        do { names = try FileOps.list(dir) } catch { return fail(dir, nil, error.message) }
        var seen: Set<String> = []
        for name in names.sorted() {
            if name == "watermark" || name.hasSuffix(".tmp") { continue }
            guard name.hasSuffix(".pld"), let org = PostingLists.org(ofStem: String(name.dropLast(4))) else {
                return fail(dir + "/" + name, nil, "unexpected file among the posting lists")
            }
            seen.insert(org)
            if let f = checkOrg(
                org, dir: dir, indexDirectory: indexDirectory, done: done, checkedBelow: served ? horizon : done,
                hot: hot, sealed: sealed, stubs: stubs)
            {
                return f
            }
        }
        // Completeness below the watermark.
        for (n, idx) in hot where n < done {
            for org in idx.dir.keys where !seen.contains(org) {
                return fail(
                    dir + "/" + PostingLists.stem(org) + ".pld", nil,
                    "posting list of org \(org) is missing, but sealed segment \(n) holds its entries")
            }
        }
        return nil
    }

    static func describe(_ e: IndexDirEntry) -> String {
        "\(e.count) rows from seq \(e.firstSeq) (org_seq \(e.firstOrgSeq)) to \(e.lastSeq), times \(e.minTime)...\(e.maxTime), \(e.length) bytes (\(e.rawLength) raw) at offset \(e.offset), crc \(e.crc)"
    }

    /// Records of segments below `checkedBelow` are checked; records below `done` must all be there.
    static func checkOrg(
        _ org: String, dir: String, indexDirectory: String, done: UInt64, checkedBelow: UInt64,
        hot: [UInt64: SealedIndex], sealed: Set<UInt64>, stubs: [UInt64: ArchivedStub]
    ) -> VerificationFailure? {
        let stem = dir + "/" + PostingLists.stem(org)
        func fail(_ path: String, _ offset: Int64?, _ m: String) -> VerificationFailure {
            VerificationFailure(seq: nil, path: path, offset: offset, message: "posting list of org \(org): " + m)
        }
        do {
            guard var p = try PostingReader(directory: dir, indexDirectory: indexDirectory, org: org) else {
                return nil
            }
            var segs: Set<UInt64> = []
            var last: UInt64?
            for i in 0..<p.count {
                let r: PostingRecord
                do { r = try p.record(i) } catch {
                    // The last record may be in flight beside a running daemon, or torn by a
                    // crash; what it should hold below the watermark is asked for below.
                    if i == p.count - 1 { break }
                    throw error
                }
                let at = Int64(i * PostingRecord.size)
                if let last, r.segment <= last {
                    return fail(p.dirPath, at, "record \(i) (segment \(r.segment)) does not follow segment \(last)")
                }
                last = r.segment
                guard r.segment < checkedBelow else { continue }
                segs.insert(r.segment)
                if let idx = hot[r.segment] {
                    guard let e = idx.dir[org] else {
                        return fail(
                            p.dirPath, at,
                            "record \(i) lists segment \(r.segment), whose index file has no entries of the org")
                    }
                    var got = r.row
                    got.org = e.org
                    guard r.state == PostingRecord.live, got == e else {
                        return fail(
                            p.dirPath, at,
                            "record \(i) does not match segment \(r.segment)'s index file (record: \(describe(got)); index file: \(describe(e)))"
                        )
                    }
                } else if let stub = stubs[r.segment] {
                    guard let o = stub.orgs.first(where: { $0.org == org }) else {
                        return fail(
                            p.dirPath, at,
                            "record \(i) lists archived segment \(r.segment), whose signed summary has no entries of the org"
                        )
                    }
                    guard UInt64(r.row.count) == o.entries, r.row.lastSeq == o.last_seq, r.row.minTime == o.min_time,
                        r.row.maxTime == o.max_time
                    else {
                        return fail(
                            p.dirPath, at, "record \(i) does not match archived segment \(r.segment)'s signed summary")
                    }
                    if stub.purged_at != nil, r.state != PostingRecord.purged {
                        return fail(p.dirPath, at, "record \(i) of purged segment \(r.segment) is not marked purged")
                    }
                    // An archived segment's record is never read by a query (its index file left
                    // with it; a restore brings that back), and a purge cut short may have
                    // marked it purged already.
                } else if !sealed.contains(r.segment) {
                    // (A sealed segment without its index file gets both back at the next start.)
                    return fail(p.dirPath, at, "record \(i) lists segment \(r.segment), which the log does not hold")
                }
            }
            for (n, idx) in hot where n < done && idx.dir[org] != nil && !segs.contains(n) {
                return fail(p.dirPath, nil, "the record of sealed segment \(n) is missing")
            }
        } catch {
            let e = error as? AuditError
            return fail(e?.path ?? stem + ".pld", e?.offset, e?.message ?? "\(error)")
        }
        return nil
    }
}
