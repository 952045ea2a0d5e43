import Archive
import ArgumentParser
import AuditBase
import Foundation
import LogProofs
import Replication

/// `auditctl recover`: a working data directory from the bucket alone, on a new machine.
struct Recover: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build a data directory from the bucket alone (bundles, tail objects, checkpoints).",
        discussion: """
            For a machine that was lost: every sealed segment comes from its bundle, the segments
            not sealed yet from their signed tail objects, and the log's own replay re-derives both
            chains, the tree and the index from the entries; every checkpoint the bucket holds must
            then be the rebuilt tree's. Anything that does not verify stops it, named, and the
            directory is removed. Start auditd on DIR with the same key afterwards: it continues the
            same log. The key's signer state is kept consistent (a record of checkpoints the bucket
            never held, so never published, is rewound, and said so).
            """)

    @Argument(help: "The data directory to build (must not exist, or be empty).") var dir: String
    @Option(help: "The bucket: s3://BUCKET[/PREFIX] (credentials and endpoint as for auditd's archive setting).")
    var archive: String
    @Option(help: "The log's signing key. Default: <parent of DIR>/auditd-keys/<DIR name>.key") var key: String?

    func run() throws {
        guard archive.hasPrefix("s3://") else {
            throw ValidationError("--archive must be an s3:// bucket: recovery reads what replication put there")
        }
        let keyPath = key ?? DataDirectory(dir).defaultKey
        let signer: NoteSigner
        do { signer = try KeyFile.load(path: keyPath) } catch {
            throw CLIError(
                "cannot read the signing key \(keyPath) (\(error)): recovery continues the same log, so it needs the key it was signed with; give it with --key"
            )
        }
        let backend = try S3Backend(try S3Settings(url: archive), cache: ArchiveBackends.cache(forData: dir))
        let report: BucketRecoveryReport
        do {
            report = try BucketRecovery.recover(
                bucket: backend, into: dir, signer: signer, keyPath: keyPath,
                progress: { printError("recover: \($0)") })
        } catch {
            throw CLIError("recovery refused: \(error)")
        }
        print("OK: \(report)")
    }
}
