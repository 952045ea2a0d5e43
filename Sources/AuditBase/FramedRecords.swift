/// The record framing of the small append-only files beside the log (the personal store's
/// journals, format-spec.md §5.4.2; the time-stamp tokens, §8.7): each record is
/// `length:u32 crc32c:u32 body[length]`, little-endian, the CRC over the body. A torn tail (a
/// record cut by a crash) ends the readable part; the writer cuts it before appending.
public enum FramedRecords {
    /// `body` framed as one record.
    public static func frame(_ body: [UInt8], into w: inout ByteWriter) {
        w.write(UInt32(body.count))
        w.write(CRC32C.checksum(body))
        w.write(body)
    }

    /// The records of `bytes` from `start`, each with its offset, and where the valid part
    /// ends (the end of the last whole record whose CRC matches and whose length is at most
    /// `maxBody`).
    public static func records(
        _ bytes: [UInt8], from start: Int = 0, maxBody: Int
    ) -> (records: [(offset: Int, body: ArraySlice<UInt8>)], end: Int) {
        var out: [(Int, ArraySlice<UInt8>)] = []
        var at = start
        while bytes.count - at >= 8 {
            var r = ByteReader(bytes, range: at..<(at + 8))
            guard let len = try? Int(r.readU32()), let crc = try? r.readU32(), len <= maxBody,
                bytes.count - at - 8 >= len
            else { break }
            let body = bytes[(at + 8)..<(at + 8 + len)]
            guard CRC32C.matches(CRC32C.checksum(body), crc) else { break }
            out.append((at, body))
            at += 8 + len
        }
        return (out, at)
    }
}
