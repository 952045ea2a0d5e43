import AuditBase
import Foundation
import LogProofs
import SegmentStore
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 7: every durable file operation of the workload, failed in turn (ENOSPC, EIO, a short
/// write), at every position N. After each: nothing acknowledged is lost or reported lost,
/// writes are refused after a failed sync, and everything verifies after a restart.
@Suite struct FaultInjectionTests {
    static func operationCount() throws -> Int {
        let root = temporaryDirectory("faults-count")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let plan = FaultPlan()
        FileOps.intercept(root, with: plan)
        defer { FileOps.stopIntercepting(root) }
        let out = Workload(root: root, signer: try NoteSigner.generate(name: "audit.test/log")).run()
        #expect(out.failures.isEmpty, "\(out.failures)")
        return plan.operations.count
    }

    @Test(arguments: [FileFault.fail(ENOSPC), .fail(EIO), .shortWrite(5)])
    func everyOperationFailedInTurn(fault: FileFault) throws {
        let total = try Self.operationCount()
        #expect(total > 100, "the workload should exercise many operations (\(total))")
        let signer = try NoteSigner.generate(name: "audit.test/log")
        var failedRuns = 0
        for n in 0..<total {
            let root = temporaryDirectory("faults")
            defer { try? FileManager.default.removeItem(atPath: root) }
            let plan = FaultPlan()
            plan.failNth(n, with: fault)
            FileOps.intercept(root, with: plan)
            let w = Workload(root: root, signer: signer)
            let out = w.run()
            FileOps.stopIntercepting(root)
            if !out.failures.isEmpty { failedRuns += 1 }
            let bad = w.check(out)
            #expect(
                bad.isEmpty,
                "operation \(n) (\(plan.operations.dropFirst(n).first.map { "\($0)" } ?? "?")) failed with \(fault): \(bad)"
            )
            if !bad.isEmpty { break }
        }
        #expect(failedRuns > 0)
        print("fault injection: \(total) operations × \(fault): every position checked")
    }
}
