import ArgumentParser

/// The operators', archivists' and auditors' command-line tool.
@main
struct AuditCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auditctl",
        abstract: "Operate, query and verify a tamper-evident audit log.",
        discussion: """
            Offline commands work on a data directory (DIR) without the daemon. Verification
            never needs the signing key: only the public verifier key (`auditctl key DIR`).
            """,
        subcommands: [
            Import.self, Append.self, Verify.self, VerifyExport.self, ShowCheckpoint.self, KeyCommand.self, Prove.self,
            Show.self, Token.self, ArchiveCommand.self, Hold.self, Retention.self, WitnessCommand.self,
            VerifyReceipt.self, Recover.self, Erase.self, EvidenceCommand.self, VerifyEvidence.self,
        ])
}
