import Foundation

/// Polls `check` every `interval` until it returns a value, for at most `seconds`; nil if it
/// never did. The check runs once more after the deadline: a poller whose sleep resumed late
/// (the test pool's threads held by other tests' blocking waits, as under `swift test` on two
/// cores, where a sleep of 0.1 s has come back after a minute) still sees what is there, rather
/// than failing a wait that had succeeded long before.
public func eventually<T>(
    seconds: Double, every interval: Duration = .milliseconds(100), _ check: () async throws -> T?
) async throws -> T? {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        if let value = try await check() { return value }
        guard Date() < deadline else { return nil }
        try await Task.sleep(for: interval)
    }
}
