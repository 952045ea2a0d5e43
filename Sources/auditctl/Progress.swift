import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A progress bar on standard error: redrawn in place on a terminal, a line per 10% otherwise.
final class ProgressBar {
    let label: String
    let tty = isatty(2) != 0
    var lastDraw = Date.distantPast
    var lastDecile = -1
    let start = Date()

    init(label: String) { self.label = label }

    func update(_ done: UInt64, _ total: UInt64) {
        // Clamped: a caller that counts past its total must not draw a bar longer than the bar.
        let frac = total == 0 ? 1 : min(1, Double(done) / Double(total))
        let rate = Double(done) / max(Date().timeIntervalSince(start), 0.001)
        if tty {
            guard Date().timeIntervalSince(lastDraw) > 0.1 || done == total else { return }
            lastDraw = Date()
            let width = 30
            let filled = Int(frac * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
            try? FileHandle.standardError.write(
                contentsOf: "\r\(label) [\(bar)] \(Int(frac * 100))% \(done)/\(total) (\(Int(rate))/s)".data(
                    using: .utf8) ?? Data())
        } else {
            let d = Int(frac * 10)
            guard d > lastDecile else { return }
            lastDecile = d
            try? FileHandle.standardError.write(
                contentsOf: "\(label): \(d * 10)% (\(done)/\(total), \(Int(rate))/s)\n".data(using: .utf8) ?? Data())
        }
    }

    func finish() {
        if tty { try? FileHandle.standardError.write(contentsOf: Data("\n".utf8)) }
    }
}

/// Writes a line to standard error.
func printError(_ s: String) {
    try? FileHandle.standardError.write(contentsOf: (s + "\n").data(using: .utf8) ?? Data())
}

/// A failure while running a command (not a mistyped command line): ArgumentParser prints it
/// as "Error: …" and exits 1, without the usage text.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
