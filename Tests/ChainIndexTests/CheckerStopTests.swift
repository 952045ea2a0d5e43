import AuditBase
import Foundation
import LogProofs
import Testing

@testable import AuditEntries
@testable import ChainIndex
@testable import Verification

/// A long verification pass can be stopped between batches (a daemon shutting down), and what
/// it checked so far is exactly what its position says.
@Suite struct CheckerStopTests {
    @Test func aPassStopsBetweenBatchesAndTheNextGoesOnFromThere() throws {
        let dir = temporaryDirectory("checker-stop")
        let s = try Sample.signer()
        let l = try Ledger(directory: dir, signer: s, options: Sample.options())
        for seg in 0..<3 {
            _ = try l.appendAndWait((0..<100).map { try Sample.prepared(org: "org_\($0 % 3)", i: seg * 100 + $0) })
            try l.checkpointNow()
            try l.sealNow()
        }
        var checker = ChainChecker(ledger: l, checkpoints: try l.verifiedCheckpoints().0)
        var asked = 0
        let stopped = try checker.checkSegments(
            upTo: l.sealedEnd, verifier: l.verifier, batchSize: 30,
            stop: {
                asked += 1
                return asked >= 3
            })
        #expect(stopped == nil)
        // Two batches of 30 entries were checked before the third question stopped it.
        #expect(checker.position == 60)
        // Carried on without a stop, the same checker reaches the end and finds nothing wrong.
        let rest = try checker.checkSegments(upTo: l.sealedEnd, verifier: l.verifier, batchSize: 30)
        #expect(rest == nil)
        #expect(checker.position == 300)
        try l.close()
    }
}
