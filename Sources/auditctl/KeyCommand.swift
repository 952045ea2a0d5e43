import ArgumentParser
import AuditBase
import ChainIndex
import Foundation
import LogProofs

#if canImport(Glibc)
import Glibc
#endif

/// `auditctl key`: the log's verifier key, new keys, and handing the log's key on
/// (format-spec.md §8.8).
struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "The log's keys: print the verifier key, make a key, hand the log's key on.",
        subcommands: [Show.self, Generate.self, Rotate.self], defaultSubcommand: Show.self)

    /// `auditctl key [show] DIR`.
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Print the log's verifier key (name+hash+base64 Ed25519 key, as Go's sumdb/note defines it): the first one, which verifiers trust; --chain adds each key it was handed on to."
        )

        @Argument(help: "The data directory.") var dir: String
        @Flag(help: "Also print every key succession (the handover size, the grace end, the new key).")
        var chain = false

        func run() throws {
            let keys = try Ledger.verifierKey(directory: dir)
            print(keys.original.text)
            guard chain else { return }
            for s in keys.successions {
                print("handed on at size \(s.handover) (old key signs up to \(s.graceEnd)) to \(s.new.text)")
            }
        }
    }

    /// `auditctl key generate --name ORIGIN --out FILE`.
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new signing key (mode 0600) for the log named ORIGIN, and print its verifier key.")

        @Option(help: "The log's origin (`auditctl key DIR` prints it before the first '+').") var name: String
        @Option(help: "The file to write; it must not exist.") var out: String

        func run() throws {
            guard !FileOps.exists(out) else {
                throw CLIError("\(out) exists; give a new path (keys are never overwritten)")
            }
            let signer: NoteSigner
            do { signer = try NoteSigner.generate(name: name) } catch { throw ValidationError("--name: \(error)") }
            try FileOps.createFile(out, contents: Array((signer.text + "\n").utf8), mode: 0o600)
            try FileOps.fsyncDirectory(FileOps.directory(of: out))
            print(signer.verifier.text)
        }
    }

    /// `auditctl key rotate DIR --new-key FILE`.
    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hand the log's key on to a new one, signed by both (format-spec.md §8.8).",
            discussion: """
                The log appends `log.key.rotated` (org _operator) and records a statement naming
                the old key, the new key and the tree size of the handover, signed by both keys.
                From that size on the new key signs checkpoints; for --grace more entries the
                old key co-signs them, so witnesses and writers that hold only the old key keep
                checking while they follow the statement. The new key then replaces the signing
                key's file (auditd's `key`, or --key when no daemon runs). Verifiers that trust
                the log's first key follow every statement; `auditctl key DIR --chain` lists them.
                A key that leaked is retired the same way with --grace 0 (see format-spec §8.8).
                """)

        @Argument(help: "The data directory.") var dir: String
        @Option(
            help: "The new signing key's file (from `auditctl key generate`); it must be named by the log's origin.")
        var newKey: String
        @Option(help: "Entries after the handover whose checkpoints the old key co-signs.") var grace: UInt64 = 10_000
        @OptionGroup var trail: AuditTrailOptions

        func run() async throws {
            let new: NoteSigner
            do { new = try KeyFile.load(path: newKey) } catch { throw ValidationError("--new-key: \(error)") }
            let actor = "uid:\(getuid())"
            if let (client, _) = await trail.daemon(dir: dir) {
                defer { Task { await client.close() } }
                let r: [String: Any]
                do { r = try await client.rotateKey(key: new.text, grace: grace, actor: actor) } catch {
                    throw CLIError("not rotated: \(error)")
                }
                report(
                    seq: (r["seq"] as? NSNumber)?.uint64Value ?? 0,
                    handover: (r["handover"] as? NSNumber)?.uint64Value ?? 0,
                    graceEnd: (r["grace_end"] as? NSNumber)?.uint64Value ?? 0, new: new.verifier.text,
                    keyFile: "auditd's signing key file")
                return
            }
            let keyPath = trail.key ?? DataDirectory(dir).defaultKey
            let ledger = try trail.openLog(dir: dir, unchanged: "the key was not rotated")
            let done: Ledger.HandOver
            do {
                try KeyFile.stage(new, path: keyPath)
                done = try ledger.handOver(to: new, grace: grace, actor: actor, via: "auditctl")
            } catch {
                if ledger.verifier.current != new.verifier { try? FileOps.unlink(KeyFile.nextPath(keyPath)) }
                _ = try? ledger.close()
                throw CLIError("not rotated: \(error)")
            }
            // Handed over: from here a failure leaves the staged key, which the next start of
            // auditd (or this command's next run) puts in place.
            try KeyFile.promote(path: keyPath, key: new.verifier)
            try ledger.close()
            report(
                seq: done.record.seq, handover: done.succession.handover, graceEnd: done.succession.graceEnd,
                new: new.verifier.text, keyFile: keyPath)
        }

        func report(seq: UInt64, handover: UInt64, graceEnd: UInt64, new: String, keyFile: String) {
            print(
                "handed the log's key on to \(new) at tree size \(handover) (recorded as entry \(seq)); the old key co-signs checkpoints up to size \(graceEnd). The new key now replaces \(keyFile); verifiers holding the first key follow the statement (auditctl key \(dir) --chain)."
            )
        }
    }
}
