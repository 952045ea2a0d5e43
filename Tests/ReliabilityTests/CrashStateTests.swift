import Foundation
@testable import ChainIndex
import SegmentStore
import Testing
import TestSupport

/// Issue 7: the workload's durable operations recorded once; then, for every prefix of them
/// and each way unsynced work can be lost, the directory a crash there could leave is rebuilt,
/// opened and checked: it opens, keeps every entry acknowledged before the crash, verifies.
@Suite struct CrashStateTests {
    @Test func everyCrashStateOfTheWorkloadRecovers() throws {
        let root = temporaryDirectory("crash-record")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let recorder = CrashRecorder(root: root)
        FileOps.intercept(root, with: recorder)
        var w = Workload(root: root, signer: try NoteSigner.generate(name: "audit.test/log"))
        w.operations = { recorder.count }
        let out = w.run()
        FileOps.stopIntercepting(root)
        #expect(out.failures.isEmpty, "\(out.failures)")
        let total = recorder.count
        var states = 0
        for k in 0...total {
            for survival in CrashRecorder.Survival.allCases {
                let state = temporaryDirectory("crash-state")
                defer { try? FileManager.default.removeItem(atPath: state) }
                try recorder.materialize(prefix: k, survival: survival, into: state)
                let bad = Workload(root: state, signer: w.signer).check(out, ackedBy: k)
                states += 1
                #expect(bad.isEmpty, "crash after operation \(k) of \(total), \(survival): \(bad)")
                if !bad.isEmpty { return }
            }
        }
        print("crash states: \(states) explored (\(total) operations × \(CrashRecorder.Survival.allCases.count) outcomes + the empty start)")
    }
}
