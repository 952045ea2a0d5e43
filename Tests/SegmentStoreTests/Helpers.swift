import Foundation
@_exported import TestSupport

@testable import SegmentStore

func records(_ n: Int, from: Int = 0, keys: Int = 3) -> [StoreRecord] {
    (from..<from + n).map { i in
        StoreRecord(
            key: UInt64(i % keys + 1),
            payload: Array("record \(i) ".utf8) + [UInt8](repeating: UInt8(i % 251), count: i % 50))
    }
}
