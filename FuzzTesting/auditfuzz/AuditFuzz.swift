import Foundation
import FuzzHarness

// One executable for every fuzz target; the bodies are in Tests/FuzzHarness, which
// Tests/FuzzRegressionTests also replays on every fail case and seed.
//
// Built by `scripts/fuzz` with `--sanitize=fuzzer`, which defines
// FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION: libFuzzer supplies `main` and calls
// `LLVMFuzzerTestOneInput`, and AUDITLOG_FUZZ_TARGET names the body. In a normal build it is a
// replayer: `auditfuzz TARGET FILE...` runs each file through TARGET's body once.

func fail(_ message: String) -> Never {
    try? FileHandle.standardError.write(contentsOf: Data("auditfuzz: \(message)\n".utf8))
    exit(2)
}

/// The body a target's name gives, or a clear exit.
func body(named name: String?) -> @Sendable (UnsafeRawBufferPointer) -> Void {
    let known = FuzzHarness.targets.keys.sorted().joined(separator: " ")
    guard let name, !name.isEmpty else {
        fail("no target named (AUDITLOG_FUZZ_TARGET, or the first argument); one of: \(known)")
    }
    guard let body = FuzzHarness.targets[name] else {
        fail("unknown target \(name); one of: \(known)")
    }
    return body
}

#if FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
/// Resolved once, on the first input (a global's initializer runs once, thread-safely).
let selected = body(named: ProcessInfo.processInfo.environment["AUDITLOG_FUZZ_TARGET"])

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    selected(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#else
@main
enum AuditFuzz {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.isEmpty || arguments[0] == "--help" || arguments[0] == "-h" {
            print("usage: auditfuzz TARGET FILE...  (runs each file through TARGET's fuzz body once)")
            print("targets: \(FuzzHarness.targets.keys.sorted().joined(separator: " "))")
            exit(arguments.isEmpty ? 2 : 0)
        }
        let replay = body(named: arguments[0])
        for path in arguments.dropFirst() {
            guard let bytes = FileManager.default.contents(atPath: path) else {
                fail("cannot read \(path): check that it exists and is readable")
            }
            bytes.withUnsafeBytes { replay($0) }
            print("\(path): \(bytes.count) bytes, no trap")
        }
    }
}
#endif
