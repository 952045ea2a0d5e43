import AuditBase
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Opening a store: what its directory holds, listed, checked and opened.
extension SegmentStore {
    /// What the directory holds, listed and opened (init's steps 1-4).
    struct Loaded {
        var infos: [SegmentInfo]
        var rotated: [(OpenSegment, [BlockRef])]
        var report: RecoveryReport?
        var open: OpenSegment?
        /// Where the segments end: the next sequence number and segment number.
        var endSeq: UInt64
        var nextSegment: UInt64?
    }

    static func load(
        directory: String, names: [String], readOnly: Bool, retired: [RetiredSegment]
    ) throws(AuditError) -> Loaded {
        var sealedNums: [UInt64] = []
        var openNums: [UInt64] = []
        for name in names {
            guard let (n, suffix) = SegmentNames.parse(name) else { continue }
            switch suffix {
            case "seg.tmp", "open.tmp": if !readOnly { try FileOps.unlink(directory + "/" + name) }
            case "seg": sealedNums.append(n)
            case "open": openNums.append(n)
            default: continue
            }
        }
        sealedNums.sort()
        openNums.sort()
        let hot = Set(sealedNums)
        let away = retired.filter { !hot.contains($0.segment) }
        // A sealed or retired segment's open file is stale: its seal committed (and maybe its
        // retirement after it) before the unlink of the open file happened.
        let sealedSet = hot.union(away.map(\.segment))
        if !readOnly {
            for n in openNums where sealedSet.contains(n) { try FileOps.unlink(directory + "/" + SegmentNames.open(n)) }
            try FileOps.fsyncDirectory(directory)
        }
        openNums.removeAll { sealedSet.contains($0) }

        var infos: [SegmentInfo] = []
        for n in sealedNums { infos.append(try peekSealed(directory + "/" + SegmentNames.sealed(n), segment: n)) }
        for r in away {
            guard r.endSeq > r.firstSeq else {
                throw AuditError(
                    .corrupt, "retired segment \(r.segment) is named with no entries (\(r.firstSeq)..<\(r.endSeq))",
                    path: r.path)
            }
            infos.append(
                SegmentInfo(
                    segment: r.segment, state: .retired, path: r.path, firstSeq: r.firstSeq, endSeq: r.endSeq,
                    label: r.label, hint: r.hint))
        }
        infos.sort { $0.segment < $1.segment }
        var rot: [(OpenSegment, [BlockRef])] = []
        var report: RecoveryReport?
        var openSeg: OpenSegment?
        for (i, n) in openNums.enumerated() {
            let isLast = i == openNums.count - 1
            let path = directory + "/" + SegmentNames.open(n)
            let seg: OpenSegment
            let rep: RecoveryReport
            do {
                (seg, rep) = try OpenSegment.recover(
                    path: path, expectedSegment: n, allowCut: isLast, readOnly: readOnly)
            } catch {
                // A reader beside the writer: the segment was sealed since it was listed (its
                // open file goes once its sealed file is in place; segments seal oldest first).
                let sealedPath = directory + "/" + SegmentNames.sealed(n)
                guard readOnly, rot.isEmpty, !FileOps.exists(path), FileOps.exists(sealedPath) else { throw error }
                infos.append(try peekSealed(sealedPath, segment: n))
                continue
            }
            if isLast {
                openSeg = seg
                report = rep
            } else {
                rot.append((seg, seg.blocks))
            }
        }
        // Check that segment numbers and sequence ranges continue one another, from 0.
        var expectedSeq: UInt64 = 0
        var expectedNum: UInt64? = 0
        let chain: [(UInt64, UInt64, UInt64, String)] =
            infos.map { ($0.segment, $0.firstSeq, $0.endSeq, $0.path) }
            + rot.map { ($0.0.segment, $0.0.firstSeq, $0.0.nextSeq, $0.0.path) }
            + (openSeg.map { [($0.segment, $0.firstSeq, $0.nextSeq, $0.path)] } ?? [])
        for (num, first, end, path) in chain {
            if let e = expectedNum, num != e {
                throw AuditError(
                    .corrupt,
                    "segment \(e) is missing (found \(num) next)"
                        + (e == 0
                            ? "; segments that left the directory must be named as retired when it is opened" : ""),
                    path: path)
            }
            guard first == expectedSeq else {
                throw AuditError(
                    .corrupt,
                    "segment starts at sequence \(first) but the previous one ends before \(expectedSeq): a segment is missing, truncated or swapped",
                    path: path, offset: 24)
            }
            expectedSeq = end
            expectedNum = num + 1
        }
        return Loaded(
            infos: infos, rotated: rot, report: report, open: openSeg, endSeq: expectedSeq, nextSegment: expectedNum)
    }
}
