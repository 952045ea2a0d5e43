import Archive
import ArgumentParser
import AuditBase
import AuditClient
import ChainIndex
import Foundation
import LogProofs

/// `auditctl erase`: a data subject's personal values forgotten under a recorded authority
/// (format-spec.md §5.4.3). Through the running daemon (ERASE on its socket), else straight
/// into the log with its signing key.
struct Erase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Erase a data subject's personal values (GDPR Art. 17), keeping every proof valid.",
        discussion: """
            A signed privacy entry `data_subject.erased` (naming the subject by its tag, the
            authority and the reason) is appended first; then the subject's key is destroyed,
            so its values in DATA/personal can never be read again. Entries keep their
            commitments: every hash, link and proof still verifies, and verifiers show the
            fields as ERASED with this entry and authority. Refused while a legal hold covers
            the org. Only fields committed under `personal_fields = commit` can be erased.
            Entries that name the subject in the clear (written before the log committed
            personal fields) cannot be erased, only withheld: the record lists them (by the
            SHA-256 of their seqs), and the read port, the feed and exports stop showing them,
            showing their hashes and links instead, so every proof still holds.
            """)
    @Argument(help: "The data directory.") var dir: String
    @Option(help: "The org.") var org: String
    @Option(help: "The data subject's id, as writers sent it (for example usr_123).") var subject: String
    @Option(help: "Why (for example the request's reference).") var reason: String
    @Option(help: "Who ordered it (for example: DPO, ticket PRIV-123).") var authority: String
    @OptionGroup var trail: AuditTrailOptions

    func run() async throws {
        try LegalHolds.refuseErasure(dir: dir, org: org)
        let actor = "uid:\(getuid())"
        if let (client, _) = await trail.daemon(dir: dir) {
            defer { Task { await client.close() } }
            let r: [String: Any]
            do {
                r = try await client.erase(
                    org: org, subject: subject, reason: reason, authority: authority, actor: actor)
            } catch { throw CLIError("not erased: \(error)") }
            report(
                seq: (r["seq"] as? NSNumber)?.uint64Value ?? 0, tag: r["tag"] as? String ?? "?",
                erased: r["erased"] as? Bool ?? true, withheld: (r["withheld"] as? NSNumber)?.intValue ?? 0)
            return
        }
        let ledger = try trail.openLog(dir: dir, unchanged: "nothing was erased")
        if let note = ledger.erasureNote { printError("auditctl: \(note)") }
        let done: Ledger.Erasure
        do {
            done = try ledger.erase(
                org: org, subject: subject, reason: reason, authority: authority, actor: actor, via: "auditctl"
            ) { try LegalHolds.refuseErasure(dir: dir, org: org) }
        } catch {
            _ = try? ledger.close()
            throw CLIError("not erased: \(error)")
        }
        try ledger.close()
        report(seq: done.record.seq, tag: done.tag.text, erased: done.erased, withheld: done.withheld)
    }

    func report(seq: UInt64, tag: String, erased: Bool, withheld: Int) {
        print(
            "erased subject \(subject) of org \(org): recorded as entry \(seq) (subject tag \(tag), authority \(authority))"
                + (erased ? "; its values can no longer be read" : "; it had no committed values")
                + (withheld > 0
                    ? (withheld == 1
                        ? "; 1 entry written in the clear names it and cannot be erased: it is withheld from readers from now on (its bytes stay in the segments)"
                        : "; \(withheld) entries written in the clear name it and cannot be erased: they are withheld from readers from now on (their bytes stay in the segments)")
                    : "")
        )
    }
}
