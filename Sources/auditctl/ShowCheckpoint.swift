import ArgumentParser
import AuditBase
import ChainIndex
import Foundation
import LogProofs
import LogTree

/// `auditctl checkpoint DIR`: the latest signed checkpoint.
struct ShowCheckpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Print the latest signed checkpoint (C2SP tlog-checkpoint signed note).")

    @Argument(help: "The data directory.")
    var dir: String

    func run() throws {
        let key = try Ledger.verifierKey(directory: dir)
        let log = try CheckpointLog(directory: DataDirectory(dir).checkpoints, verifier: key, readOnly: true)
        guard let cp = log.latest else { throw CLIError("\(dir) has no checkpoint yet (append entries first)") }
        print(cp.note, terminator: "")
    }
}

/// `auditctl key DIR`: the verifier key.
struct ShowKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Print the log's verifier key (name+hash+base64 Ed25519 key, as Go's sumdb/note defines it).")

    @Argument(help: "The data directory.")
    var dir: String

    func run() throws {
        print(try Ledger.verifierKey(directory: dir).text)
    }
}
