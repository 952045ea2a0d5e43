import Foundation

/// A fresh temporary directory, removed by the caller.
func temporaryDirectory(_ tag: String) -> String {
    let p = NSTemporaryDirectory() + "auditlog-\(tag)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}
