import Archive
import ArgumentParser
import AuditBase
import AuditEntries
import ChainIndex
import Foundation
import LogTree
import SegmentStore

/// `auditctl show DIR --seq N`: one entry with its link, as an auditor checks it.
struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print one entry: its canonical bytes, its link fields and its hash.",
        discussion: "Opens the directory read-only; works while auditd runs.")

    @Argument(help: "The data directory.")
    var dir: String
    @Option(help: "Sequence number.")
    var seq: UInt64

    func run() throws {
        let store = try Ledger.segmentStore(dir, retired: ArchiveTier(), readOnly: true)
        let tree = try TreeStore(directory: DataDirectory(dir).tree, readOnly: true)
        guard seq < tree.size else { throw CLIError("entry \(seq) does not exist (the log's tree holds \(tree.size))") }
        let p = try RecordPayload(bytes: try store.read(seq: seq).payload)
        let link = try Link.stored(
            seq: seq, orgSeq: p.orgSeq, prevOrgDelta: p.prevOrgDelta, contentHash: SHA256.hash(p.content),
            leaf: tree.leaf)
        let stored = try tree.leaf(seq)
        try printJSON([
            "seq": seq, "org_seq": p.orgSeq, "entry": String(decoding: p.content, as: UTF8.self),
            "content_hash": link.contentHash.hex, "prev_hash": link.prevHash.hex, "prev_org_hash": link.prevOrgHash.hex,
            "link": link.bytes.hex, "hash": link.leafHash.hex, "matches_tree": link.leafHash == stored,
        ])
    }
}
