import Foundation
import TestSupport
import Testing

/// `eventually`: a wait is judged by what is there, not by when the poller got to look.
struct EventuallyTests {
    @Test func aPollerThatWakesAfterItsDeadlineLooksOnceMore() async throws {
        let ready = Date().addingTimeInterval(0.2)
        var looks = 0
        // The deadline (0.05 s) passes during the first sleep (0.4 s), as when the pool resumes
        // a sleeping test late; the condition holds by then.
        let found = try await eventually(seconds: 0.05, every: .milliseconds(400)) { () -> Bool? in
            looks += 1
            return Date() >= ready ? true : nil
        }
        #expect(found == true && looks == 2)
    }

    @Test func aConditionThatNeverHoldsIsNil() async throws {
        let found = try await eventually(seconds: 0.2, every: .milliseconds(50)) { () -> Bool? in nil }
        #expect(found == nil)
    }
}
