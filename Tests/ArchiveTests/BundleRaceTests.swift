import AuditBase
import Foundation
import SegmentStore
import Testing

@testable import Archive

/// The archiver's pass and replication both put bundles through one `Archiver`: two puts of
/// the same segment's bundle at once must both end with the bundle stored, neither failing
/// (one was seen to fail as "already exists", and replication reported itself failing).
@Suite struct BundleRaceTests {
    @Test func twoPutsOfOneBundleAtOnceBothSucceed() throws {
        let (root, archiveDir, l, _) = try ArchiveTests().makeLog()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let archiver = Archiver(ledger: l, backend: try LocalDirectoryBackend(root: archiveDir))
        for info in l.segments() where info.state == .sealed {
            let go = DispatchSemaphore(value: 0)
            let results = NSLock()
            nonisolated(unsafe) var outcomes: [Result<String, Error>] = []
            let group = DispatchGroup()
            for _ in 0..<2 {
                group.enter()
                Thread {
                    go.wait()
                    let r = Result { try archiver.putBundle(info) }
                    results.withLock { outcomes.append(r) }
                    group.leave()
                }.start()
            }
            go.signal()
            go.signal()
            group.wait()
            for r in outcomes {
                if case .failure(let e) = r { Issue.record("segment \(info.segment): \(e)") }
            }
            #expect(try archiver.backend.contains(bundle: BundleFiles.name(info.segment)))
        }
    }
}
