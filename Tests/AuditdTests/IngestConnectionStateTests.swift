import Testing

@testable import auditd

/// The ingest connection's rules, without a socket.
@Suite struct IngestConnectionStateTests {
    @Test func badFramesAreAnsweredUntilTooManyInOneBurst() {
        var s = IngestConnectionState(maxInflight: 8, maxErrorsPerBurst: 3)
        #expect([s.refused(), s.refused(), s.refused()] == [.answer, .answer, .answer])
        s.readComplete()
        #expect([s.refused(), s.refused(), s.refused(), s.refused()] == [.answer, .answer, .answer, .close])
    }

    @Test func readingPausesOnceForManyReasonsAndResumesWhenTheLastGoes() {
        var s = IngestConnectionState(maxInflight: 8)
        #expect(s.submitted(4, overTotal: false) == [])
        #expect(s.submitted(4, overTotal: true) == [.pause, .none])
        #expect(s.writability(false) == .none)
        #expect(s.answered(2) == .none, "6 in flight is not below half of 8")
        #expect(s.answered(3) == .none, "below half, but still over the total and unwritable")
        #expect(s.totalBelowHalf() == .none)
        #expect(s.writability(true) == .resume)
        #expect(s.inflight == 3)
    }

    @Test func anIdlePeerIsClosedButNotOneWaitingForAcks() {
        var s = IngestConnectionState(maxInflight: 8)
        #expect(s.shouldCloseIdle(partialFrame: false))
        _ = s.submitted(1, overTotal: false)
        #expect(!s.shouldCloseIdle(partialFrame: false))
        #expect(s.shouldCloseIdle(partialFrame: true), "stalled in the middle of a frame")
    }

    @Test func aConnectionClosesOnce() {
        var s = IngestConnectionState(maxInflight: 8)
        #expect(s.isOpen && s.close())
        #expect(!s.isOpen && !s.close())
    }
}
