import Foundation

/// Flips one byte of a file in place (chmod'ing a read-only file first, as an attacker would).
public func flipByte(_ path: String, at offset: Int, mask: UInt8 = 0x5A) throws {
    _ = chmod(path, 0o644)
    let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try h.seek(toOffset: UInt64(offset))
    let b = try h.read(upToCount: 1) ?? Data([0])
    try h.seek(toOffset: UInt64(offset))
    try h.write(contentsOf: Data([b[0] ^ mask]))
    try h.close()
}

/// Writes `bytes` over a file at `offset`.
public func overwrite(_ path: String, at offset: Int, with bytes: [UInt8]) throws {
    _ = chmod(path, 0o644)
    let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try h.seek(toOffset: UInt64(offset))
    try h.write(contentsOf: Data(bytes))
    try h.close()
}

/// Cuts a file to `length` bytes.
public func shrink(_ path: String, to length: Int) throws {
    _ = chmod(path, 0o644)
    let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try h.truncate(atOffset: UInt64(length))
    try h.close()
}

/// A file's size, or -1 when it is missing.
public func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? -1
}

/// A fresh temporary directory, removed by the caller.
public func temporaryDirectory(_ tag: String = "t") -> String {
    let p = NSTemporaryDirectory() + "auditlog-\(tag)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}
