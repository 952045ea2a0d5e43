import Foundation
import TestSupport

/// The path of a product built next to the test bundle (`auditctl`, `auditd`).
func builtProduct(_ name: String, file: String = #filePath) -> String {
    let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let root = URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let candidates = [
        here.appendingPathComponent(name).path,
        here.deletingLastPathComponent().appendingPathComponent(name).path,
        root.appendingPathComponent(".build/debug/\(name)").path,
    ]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[2]
}

func temporaryDirectory(_ tag: String) -> String {
    let p = NSTemporaryDirectory() + "auditctl-\(tag)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}

/// Runs a product to completion, returning its exit status, standard output and error.
@discardableResult
func run(_ name: String, _ args: [String], stdin: Data? = nil, in cwd: String? = nil) throws -> (Int32, String, String)
{
    let p = ChildProcess()
    p.executableURL = URL(fileURLWithPath: builtProduct(name))
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let out = Pipe()
    let err = Pipe()
    let inp = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = inp
    try p.run()
    let input = stdin ?? Data()
    let writer = Thread {
        inp.fileHandleForWriting.write(input)
        try? inp.fileHandleForWriting.close()
    }
    writer.start()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// `n` valid NDJSON events, numbered from `from`.
func events(_ n: Int, from: Int = 0, orgs: Int = 5) -> String {
    var s = ""
    for i in from..<from + n {
        s +=
            #"{"org":"org_\#(i % orgs)","category":"access","action":"access.granted","actor":{"type":"human","id":"usr_\#(i % 11)"},"target":{"type":"project","id":"p\#(i)"},"outcome":"success","source":{"service":"svc"},"occurred_at":"2025-03-01T00:00:00.000Z","metadata":{"i":\#(i),"pad":"\#(String(repeating: "x", count: 200))"}}"#
            + "\n"
    }
    return s
}
