import AuditBase
import AuditEntries

/// The personal store's files are framed records (`FramedRecords`, format-spec.md §5.4.2).
enum Journal {
    /// The largest body a record may declare (a value row is under 2 KiB).
    static let maxBody = 64 << 10

    /// `body` framed as one record.
    static func frame(_ body: [UInt8], into w: inout ByteWriter) { FramedRecords.frame(body, into: &w) }

    /// The records of `bytes` from `start`, each with its offset, and where the valid part ends.
    static func records(
        _ bytes: [UInt8], from start: Int = 0
    ) -> (records: [(offset: Int, body: ArraySlice<UInt8>)], end: Int) {
        FramedRecords.records(bytes, from: start, maxBody: maxBody)
    }
}

/// A key row of `subjects`: `orgLen:u8 org subjectLen:u16 subject secret[32]`.
enum KeyRecord {
    static func encode(_ k: SubjectKeyParts) -> [UInt8] {
        var w = ByteWriter(capacity: 40 + k.org.utf8.count + k.subject.utf8.count)
        w.write(UInt8(k.org.utf8.count))
        w.write(Array(k.org.utf8))
        w.write(UInt16(k.subject.utf8.count))
        w.write(Array(k.subject.utf8))
        w.write(k.secret)
        return w.bytes
    }

    static func decode(_ body: ArraySlice<UInt8>) -> SubjectKeyParts? {
        var r = ByteReader(Array(body))
        guard let ol = try? Int(r.readU8()), let org = try? r.read(count: ol), let sl = try? Int(r.readU16()),
            let subject = try? r.read(count: sl), let secret = try? r.read(count: 32), r.isAtEnd
        else { return nil }
        return SubjectKeyParts(
            org: String(decoding: org, as: UTF8.self), subject: String(decoding: subject, as: UTF8.self),
            secret: Array(secret))
    }
}

/// A subject key's parts as stored.
struct SubjectKeyParts {
    var org: String
    var subject: String
    var secret: [UInt8]
}

/// A completed erasure (`erasures`): `tag[16] recordSeq:u64 authorityLen:u16 authority`.
/// It holds nothing personal: the tag names no one once the key is gone.
public struct ErasureRecord: Sendable, Equatable {
    /// The subject's tag.
    public var tag: SubjectTag
    /// The seq of the `data_subject.erased` entry that recorded it.
    public var recordSeq: UInt64
    /// Who ordered it.
    public var authority: String

    /// A record.
    public init(tag: SubjectTag, recordSeq: UInt64, authority: String) {
        self.tag = tag
        self.recordSeq = recordSeq
        self.authority = authority
    }

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 48 + authority.utf8.count)
        w.write(tag.bytes)
        w.write(recordSeq)
        w.write(UInt16(min(authority.utf8.count, 4096)))
        w.write(Array(authority.utf8.prefix(4096)))
        return w.bytes
    }

    static func decode(_ body: ArraySlice<UInt8>) -> ErasureRecord? {
        var r = ByteReader(Array(body))
        guard let t = try? r.read(count: 16), let tag = SubjectTag(bytes: t), let seq = try? r.readU64(),
            let al = try? Int(r.readU16()), let a = try? r.read(count: al), r.isAtEnd
        else { return nil }
        return ErasureRecord(tag: tag, recordSeq: seq, authority: String(decoding: a, as: UTF8.self))
    }
}

/// A value row (`values/*.values`): one subject's fields of one entry,
/// `seq:u64 S[16] iv[16] ctLen:u16 ct`, where `ct` is AES-256-CTR under the subject's key from
/// `iv` of `(pathLen:u8 path nonce[16] valueLen:u16 value)*`.
struct ValueRow {
    var seq: UInt64
    var tag: SubjectTag
    var iv: [UInt8]
    var ciphertext: [UInt8]

    /// A row's body after its seq, sealed under `key` from `iv` in one buffer: `tag iv ctLen`,
    /// then the fields `fields` adds, encrypted where they lie. Nil if they do not fit or the
    /// cipher fails.
    static func seal(
        key: SubjectKey, iv: UnsafeRawBufferPointer,
        fields: ((String, UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) -> Void
    ) -> [UInt8]? {
        guard iv.count == 16 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(contentsOf: key.tagBytes)
        out.append(contentsOf: iv)
        out.append(0)
        out.append(0)
        let start = out.count
        var fits = true
        fields { path, nonce, value in
            guard path.utf8.count <= Int(UInt8.max), nonce.count == 16, value.count <= Int(UInt16.max) else {
                fits = false
                return
            }
            out.append(UInt8(truncatingIfNeeded: path.utf8.count))
            out.append(contentsOf: path.utf8)
            out.append(contentsOf: nonce)
            out.append(UInt8(truncatingIfNeeded: value.count))
            out.append(UInt8(truncatingIfNeeded: value.count >> 8))
            out.append(contentsOf: value)
        }
        let n = out.count - start
        guard fits, n <= Int(UInt16.max) else { return nil }
        out[start - 2] = UInt8(n & 0xFF)
        out[start - 1] = UInt8(n >> 8)
        return AESCTR.crypt(inPlace: &out, from: start, key: key.secretBytes, iv: iv) ? out : nil
    }

    /// The fields of a decrypted row; nil when it does not parse.
    static func fields(_ plain: [UInt8]) -> [(path: String, nonce: [UInt8], value: String)]? {
        var r = ByteReader(plain)
        var out: [(path: String, nonce: [UInt8], value: String)] = []
        while !r.isAtEnd {
            guard let pl = try? Int(r.readU8()), let p = try? r.read(count: pl), let n = try? r.read(count: 16),
                let vl = try? Int(r.readU16()), let v = try? r.read(count: vl)
            else { return nil }
            out.append((String(decoding: p, as: UTF8.self), Array(n), String(decoding: v, as: UTF8.self)))
        }
        return out
    }

    /// A row framed as a record: its seq before the sealed body, the CRC over both.
    static func frame(seq: UInt64, sealed: [UInt8], into w: inout ByteWriter) {
        let crc = withUnsafeBytes(of: seq.littleEndian) { CRC32C.checksum(sealed, crc: CRC32C.update(0, $0)) }
        w.write(UInt32(8 + sealed.count))
        w.write(crc)
        w.write(seq)
        w.write(sealed)
    }

    static func decode(_ body: ArraySlice<UInt8>) -> ValueRow? {
        var r = ByteReader(Array(body))
        guard let seq = try? r.readU64(), let t = try? r.read(count: 16), let tag = SubjectTag(bytes: t),
            let iv = try? r.read(count: 16), let cl = try? Int(r.readU16()), let ct = try? r.read(count: cl), r.isAtEnd
        else { return nil }
        return ValueRow(seq: seq, tag: tag, iv: Array(iv), ciphertext: Array(ct))
    }

    /// The seq of a row's body without decoding the rest.
    static func seq(_ body: ArraySlice<UInt8>) -> UInt64? {
        guard body.count >= 8 else { return nil }
        var r = ByteReader(Array(body.prefix(8)))
        return try? r.readU64()
    }
}
