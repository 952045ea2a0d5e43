import CCRC32C

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every block,
/// footer and trailer (format-spec.md §2). The CPU's CRC32 instruction where it has one (x86-64
/// with SSE 4.2), else slicing-by-8 with tables built once.
public enum CRC32C {
    /// True when the CRC32 instruction is used.
    public static let hardware = auditlog_crc32c_hw_available() != 0

    private static let tables: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[0][i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 { t[k][i] = (t[k - 1][i] >> 8) ^ t[0][Int(t[k - 1][i] & 0xff)] }
        }
        return t
    }()

    /// True when a checksum computed from the bytes matches the one stored with them. Every
    /// reader compares through here, so that a fuzzing build (compiled with
    /// `-D FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION`, scripts/fuzz) can let mutated bytes
    /// through to the parsers behind the checksum. Never defined in a normal build.
    @inline(__always) public static func matches(_ computed: UInt32, _ stored: UInt32) -> Bool {
        #if FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
        return true
        #else
        return computed == stored
        #endif
    }

    /// The checksum of `bytes`, continuing from `crc` (0 to start).
    public static func checksum<C: Collection>(_ bytes: C, crc: UInt32 = 0) -> UInt32 where C.Element == UInt8 {
        if let r = bytes.withContiguousStorageIfAvailable({ update(crc, UnsafeRawBufferPointer($0)) }) { return r }
        return Array(bytes).withUnsafeBytes { update(crc, $0) }
    }

    /// The checksum of raw memory, continuing from `crc`.
    public static func update(_ crc: UInt32, _ buf: UnsafeRawBufferPointer) -> UInt32 {
        if hardware, let base = buf.baseAddress { return auditlog_crc32c_hw(crc, base, buf.count) }
        return software(crc, buf)
    }

    /// The table-driven checksum (what the instruction computes), for CPUs without it.
    static func software(_ crc: UInt32, _ buf: UnsafeRawBufferPointer) -> UInt32 {
        var c = ~crc
        let t = tables
        return t[0].withUnsafeBufferPointer { t0 in
            t[1].withUnsafeBufferPointer { t1 in
                t[2].withUnsafeBufferPointer { t2 in
                    t[3].withUnsafeBufferPointer { t3 in
                        t[4].withUnsafeBufferPointer { t4 in
                            t[5].withUnsafeBufferPointer { t5 in
                                t[6].withUnsafeBufferPointer { t6 in
                                    t[7].withUnsafeBufferPointer { t7 in
                                        var i = 0
                                        let n = buf.count
                                        while n - i >= 8 {
                                            let lo =
                                                c
                                                ^ (UInt32(buf[i]) | UInt32(buf[i + 1]) << 8 | UInt32(buf[i + 2]) << 16
                                                    | UInt32(buf[i + 3]) << 24)
                                            let hi =
                                                UInt32(buf[i + 4]) | UInt32(buf[i + 5]) << 8 | UInt32(buf[i + 6]) << 16
                                                | UInt32(buf[i + 7]) << 24
                                            c =
                                                t7[Int(lo & 0xff)] ^ t6[Int((lo >> 8) & 0xff)]
                                                ^ t5[Int((lo >> 16) & 0xff)] ^ t4[Int(lo >> 24)]
                                                ^ t3[Int(hi & 0xff)] ^ t2[Int((hi >> 8) & 0xff)]
                                                ^ t1[Int((hi >> 16) & 0xff)] ^ t0[Int(hi >> 24)]
                                            i += 8
                                        }
                                        while i < n {
                                            c = t0[Int((c ^ UInt32(buf[i])) & 0xff)] ^ (c >> 8)
                                            i += 1
                                        }
                                        return ~c
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
