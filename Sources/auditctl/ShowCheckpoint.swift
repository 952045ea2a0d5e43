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
