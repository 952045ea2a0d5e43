import Foundation
@testable import SegmentStore

func temporaryDirectory(_ tag: String = "t") -> String {
    let p = NSTemporaryDirectory() + "segstore-\(tag)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}

func records(_ n: Int, from: Int = 0, keys: Int = 3) -> [StoreRecord] {
    (from..<from + n).map { i in
        StoreRecord(key: UInt64(i % keys + 1), payload: Array("record \(i) ".utf8) + [UInt8](repeating: UInt8(i % 251), count: i % 50))
    }
}

/// Flips one byte of a file in place (chmod'ing a read-only file first, as an attacker would).
func flipByte(_ path: String, at offset: Int) throws {
    _ = chmod(path, 0o644)
    let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try h.seek(toOffset: UInt64(offset))
    let b = try h.read(upToCount: 1) ?? Data([0])
    try h.seek(toOffset: UInt64(offset))
    try h.write(contentsOf: Data([b[0] ^ 0x5A]))
    try h.close()
}

/// Cuts a file to `length` bytes.
func shrink(_ path: String, to length: Int) throws {
    _ = chmod(path, 0o644)
    let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try h.truncate(atOffset: UInt64(length))
    try h.close()
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? -1
}
