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
    /// (`SealDictionaries`); `threads` of them at once.
    static func seal(
        records: [StoredRecord], segment: UInt64, firstSeq: UInt64, directory: String,
        blockTarget: Int, level: Int32, dictionarySize: Int, dictionaries: SealDictionaries? = nil,
        threads: Int = 1
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

        // Records into blocks: a key change starts a new block once the current one is half
        // full, so a busy key's blocks hold only it while quiet keys still share blocks.
        var groups: [[StoredRecord]] = []
        var pending: [StoredRecord] = []
        var pendingBytes = 0
        for i in order {
            if let last = pending.last, last.key != records[i].key, pendingBytes >= blockTarget / 2 {
                groups.append(pending)
                pending = []
                pendingBytes = 0
            }
            pending.append(records[i])
            pendingBytes += records[i].payload.count + 12
            if pendingBytes >= blockTarget {
                groups.append(pending)
                pending = []
                pendingBytes = 0
            }
        }
        if !pending.isEmpty { groups.append(pending) }

        // Each block is compressed alone (with the shared dictionary), so `threads` compress
        // them at once and the file is the same whatever their number.
        let encoded = BlockEncoding.encode(groups, level: level, encoder: encoder, threads: threads)
        var blocks: [FooterBlock] = []
        blocks.reserveCapacity(groups.count)
        var seqMap = [UInt32](repeating: 0, count: records.count)
        for (group, result) in zip(groups, encoded) {
            let bytes: [UInt8]
            do { bytes = try result.get() } catch {
                throw AuditError(.io, "compression failed: \(error.message)", path: tmp, offset: offset)
            }
            let h: BlockHeader
            do { h = try BlockHeader.parse(bytes[...]) } catch {
                throw AuditError(.io, "encoded an unreadable block", path: tmp, offset: offset)
            }
            for r in group { seqMap[Int(r.seq - firstSeq)] = UInt32(blocks.count) }
            blocks.append(
                FooterBlock(
                    offset: offset, payloadLength: h.payloadLength, rawLength: h.rawLength,
                    count: h.count, firstSeq: h.firstSeq, lastSeq: h.lastSeq, key: h.key))
            try put(bytes)
        }

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

/// Blocks encoded on several threads at once.
enum BlockEncoding {
    /// Each of `groups` encoded as one block (`Block.encode`), in order, by up to `threads`
    /// threads (`BlockingWorkers.fanOut`: the seal's own threads at its nice value, not
    /// Dispatch's shared pool, which runs the daemon's read-port requests), thread `w` taking
    /// groups `w`, `w + threads`, …
    static func encode(
        _ groups: [[StoredRecord]], level: Int32, encoder: ZstdDictionary.Encoder?, threads: Int
    ) -> [Result<[UInt8], ZstdError>] {
        let missing = ZstdError(message: "a block was not encoded")
        let results = Locked([Result<[UInt8], ZstdError>](repeating: .failure(missing), count: groups.count))
        let workers = max(1, min(threads, groups.count))
        BlockingWorkers.fanOut(workers, name: "seal-zstd") { w in
            for i in stride(from: w, to: groups.count, by: workers) {
                let r = Result { () throws(ZstdError) -> [UInt8] in
                    try Block.encode(groups[i], level: level, encoder: encoder)
                }
                results.mutate { $0[i] = r }
            }
        }
        return results.value
    }
}
