import AuditBase

#if canImport(Glibc)
import Glibc
#endif

/// Sealing: an open segment that has been rotated out is rewritten once as an immutable
/// segment whose blocks cluster records by grouping key (format-spec.md §2.4).
enum Sealer {
    /// Writes `records` (the whole rotated segment, in sequence order) as sealed segment
    /// `segment` in `directory`, and returns its path.
    ///
    /// 1. group records by key (keys ascending, sequence order within a key) and pack them into
    ///    blocks of about `blockTarget` raw bytes, starting a new block at a key change once
    ///    the current one is half full; 2. write header, blocks, footer and trailer to
    ///    `N.seg.tmp`; 3. fsync it, so no rename can expose a partial file; 4. chmod 0444;
    ///    5. rename to `N.seg` (the commit point); 6. fsync the directory, making the rename durable.
    ///
    /// Blocks are compressed with a dictionary of at most `dictionarySize` bytes (none when
    /// 0), stored in the footer: trained on the segment's records, or `dictionaries`' last one
    /// (`SealDictionaries`).
    static func seal(
        records: [StoredRecord], segment: UInt64, firstSeq: UInt64, directory: String,
        blockTarget: Int, level: Int32, dictionarySize: Int, dictionaries: SealDictionaries? = nil
    ) throws(AuditError) -> String {
        let tmp = directory + "/" + SegmentNames.sealing(segment)
        let final = directory + "/" + SegmentNames.sealed(segment)
        guard let last = records.last?.seq, records.first?.seq == firstSeq,
            last - firstSeq + 1 == UInt64(records.count)
        else { throw AuditError(.invalidArgument, "cannot seal an empty or non-contiguous segment", path: final) }

        let trained = (dictionaries ?? SealDictionaries()).choose(
            for: records, upTo: dictionarySize, level: level, blockTarget: blockTarget)
        let encoder = trained?.1

        var order = Array(records.indices)
        order.sort { (records[$0].key, records[$0].seq) < (records[$1].key, records[$1].seq) }

        try FileOps.unlink(tmp)
        let fd = try FileOps.open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode: 0o640)
        let file = FileHandleRef(fd: fd, path: tmp)
        var offset = Int64(0)
        func put(_ bytes: [UInt8]) throws(AuditError) {
            try FileOps.pwriteAll(file.fd, bytes[...], at: offset, path: tmp)
            offset += Int64(bytes.count)
        }
        try put(SegmentHeader(flags: SegmentFormat.flagSealed, segment: segment, firstSeq: firstSeq).encoded())

        var blocks: [FooterBlock] = []
        var seqMap = [UInt32](repeating: 0, count: records.count)
        var pending: [StoredRecord] = []
        var pendingBytes = 0
        func flush() throws(AuditError) {
            guard !pending.isEmpty else { return }
            let bytes: [UInt8]
            do { bytes = try Block.encode(pending, level: level, encoder: encoder) } catch {
                throw AuditError(.io, "compression failed: \(error.message)", path: tmp, offset: offset)
            }
            let h: BlockHeader
            do { h = try BlockHeader.parse(bytes[...]) } catch {
                throw AuditError(.io, "encoded an unreadable block", path: tmp, offset: offset)
            }
            for r in pending { seqMap[Int(r.seq - firstSeq)] = UInt32(blocks.count) }
            blocks.append(
                FooterBlock(
                    offset: offset, payloadLength: h.payloadLength, rawLength: h.rawLength,
                    count: h.count, firstSeq: h.firstSeq, lastSeq: h.lastSeq, key: h.key))
            try put(bytes)
            pending.removeAll(keepingCapacity: true)
            pendingBytes = 0
        }
        for i in order {
            // A key change starts a new block once the current one is half full, so a busy
            // key's blocks hold only it while quiet keys still share blocks.
            if let last = pending.last, last.key != records[i].key, pendingBytes >= blockTarget / 2 { try flush() }
            pending.append(records[i])
            pendingBytes += records[i].payload.count + 12
            if pendingBytes >= blockTarget { try flush() }
        }
        try flush()

        let footer = SegmentFooter(
            segment: segment, firstSeq: firstSeq, lastSeq: last, count: UInt64(records.count),
            blocks: blocks, seqMap: seqMap, dictionary: trained?.0.bytes ?? [])
        let fb: [UInt8]
        do { fb = try footer.encoded(level: level) } catch {
            throw AuditError(.io, "compression failed: \(error.message)", path: tmp, offset: offset)
        }
        let footerOffset = offset
        try put(fb)
        var t = ByteWriter(capacity: SegmentFormat.trailerSize)
        t.write(UInt64(footerOffset))
        t.write(UInt32(fb.count))
        t.write(CRC32C.checksum(fb))
        t.write(SegmentFormat.trailerMagic)
        try put(t.bytes)

        try FileOps.fsync(file.fd, path: tmp)
        try FileOps.makeReadOnly(file.fd, path: tmp)
        try FileOps.rename(tmp, final)
        try FileOps.fsyncDirectory(directory)
        return final
    }
}
