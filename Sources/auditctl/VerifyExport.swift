import ArgumentParser
import AuditBase
import AuditExport
import Foundation
import LogProofs
import TimeStamping

/// `auditctl verify-export FILE`: checks an export offline, without the daemon or the data.
struct VerifyExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-export",
        abstract:
            "Verify an NDJSON or CSV export offline: every entry signed, the filter bound to the signed export record, and whether no selected entry is missing.",
        discussion: """
            Prints OK when the export proves it holds every entry of the org that it selects (an
            export of everything, or of a time range). For any other filter it prints AUTHENTIC
            SELECTION: each entry is signed and selected, but the export cannot show that none is
            missing. Exit status 0 for either, 1 when anything fails to verify (the first bad line
            is named), 3 for a selection with --require-complete.
            """)

    @Argument(help: "The export file (- for standard input).") var file: String
    @Option(
        help:
            "The verifier key to trust. Default: the key in the export's header (compare it with the operator's published key)."
    ) var key: String?
    @Option(
        help:
            "A signed checkpoint kept from earlier (a file holding the note): fail unless the export's checkpoint extends it (repeatable; needs --key, and an export requested with ?consistency_from=<its size>)."
    )
    var checkpoint: [String] = []
    @Flag(help: "Exit 3 unless the export proves it is complete.") var requireComplete = false
    @Option(
        help:
            "A witness's verifier key (repeatable): its cosignature on the export's checkpoint counts towards --quorum."
    ) var witness: [String] = []
    @Option(help: "Cosignatures required from the --witness keys (default: all of them).") var quorum: Int?
    @Option(
        help:
            "PEM file of the certificates trusted to sign time-stamp tokens (the authority's own or its CA's): the export's RFC 3161 tokens are checked and bound when its entries existed; exit 4 if none covers them."
    ) var tsaTrust: String?

    func run() throws {
        let k: NoteVerifier?
        do { k = try key.map { try NoteVerifier($0) } } catch { throw ValidationError("--key: \(error)") }
        var kept: [String] = []
        for path in checkpoint {
            guard k != nil else {
                throw ValidationError(
                    "--checkpoint needs --key: a kept checkpoint is checked with the key you trust, not the export's")
            }
            guard let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) })
            else {
                throw CLIError("cannot read checkpoint file \(path)")
            }
            do { try Note.checkShape(text) } catch { throw CLIError("\(path) is not a signed checkpoint: \(error)") }
            kept.append(text)
        }
        let witnesses: [CosignatureVerifier]
        do {
            witnesses = try witness.map { try CosignatureVerifier($0) }
            try CosignatureVerifier.distinct(witnesses)
        } catch { throw ValidationError("--witness: \(error)") }
        let need = quorum ?? witnesses.count
        guard need >= 0, need <= witnesses.count else {
            throw ValidationError("--quorum \(need) needs at least that many --witness keys")
        }
        let reader: ExportReader
        do { reader = try ExportReader(path: file) } catch { throw CLIError("\(error)") }
        var trust: TimeStampTrust?
        do { trust = try tsaTrust.map { try TimeStampTrust(file: $0) } } catch {
            throw ValidationError("--tsa-trust: \(error)")
        }
        let r = ExportVerifier(key: k, kept: kept, timeTrust: trust).verify(lines: reader, format: reader.format)
        if let f = reader.failure ?? r.failure {
            print("FAILED: \(f)")
            throw ExitCode(1)
        }
        if !witnesses.isEmpty {
            var by: [String] = []
            var at: [String] = []
            for w in witnesses {
                do {
                    if let t = try w.cosignature(in: r.checkpointNote) {
                        by.append(w.name)
                        at.append("\(w.name) at \(Timestamp.format(Int64(clamping: t) * 1000))")
                    }
                } catch {
                    print("FAILED: the export's checkpoint: \(error)")
                    throw ExitCode(1)
                }
            }
            guard by.count >= need else {
                print(
                    "FAILED: the export's checkpoint carries \(by.count) valid cosignature\(by.count == 1 ? "" : "s") of the \(need) required from the given witnesses\(by.isEmpty ? "" : " (" + by.joined(separator: ", ") + ")"): its history is not witnessed"
                )
                throw ExitCode(1)
            }
            print(
                "WITNESSED: the checkpoint is cosigned by \(at.joined(separator: ", ")) (\(by.count) of \(witnesses.count), quorum \(need)): a second bound on when its entries existed, by the witnesses' clocks"
            )
        }
        if !r.successions.isEmpty {
            print(
                "KEYS: the log's key was handed on \(r.successions.count) time\(r.successions.count == 1 ? "" : "s") since the trusted key, each handover signed by the key it replaced and the new key: "
                    + r.successions.map { "at size \($0.handover) to \($0.new.text)" }.joined(separator: "; ")
            )
        }
        let bound = Self.timeReport(r, trust: tsaTrust)
        for l in bound.lines { print(l) }
        let keyNote = k == nil ? " (key taken from the export: compare it with the published one, or pass --key)" : ""
        let filter =
            r.filter.isEmpty
            ? ""
            : " selected by "
                + r.filter.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        if r.opened > 0 || !r.erased.isEmpty {
            print(
                "PERSONAL: \(r.opened) personal value\(r.opened == 1 ? "" : "s") checked against \(r.opened == 1 ? "its commitment" : "their commitments"); \(r.erased.count) field\(r.erased.count == 1 ? "" : "s") erased under a signed record"
            )
            for e in r.erased.prefix(50) { print("  \(e)") }
            if r.erased.count > 50 { print("  … and \(r.erased.count - 50) more erased fields") }
        }
        if !r.withheld.isEmpty {
            print(
                "WITHHELD: \(r.withheld.count) entr\(r.withheld.count == 1 ? "y names" : "ies name") an erased subject in the clear: each one's link, hash and place in the org's chain are checked, its content is not shown"
            )
            for e in r.withheld.prefix(50) { print("  \(e)") }
            if r.withheld.count > 50 { print("  … and \(r.withheld.count - 50) more withheld entries") }
        }
        switch r.completeness {
        case .complete:
            print(
                "OK: complete: all \(r.entries) entries of org \(r.org)\(filter) in the signed tree of size \(r.treeSize), none missing; \(r.context) more shown as context\(keyNote)"
            )
        case .selection(let why):
            print(
                "AUTHENTIC SELECTION: \(r.entries) entries of org \(r.org)\(filter), each signed in the tree of size \(r.treeSize) and matching the filter\(keyNote)"
            )
            print("NOT PROVEN COMPLETE: \(why)")
            if requireComplete { throw ExitCode(3) }
        }
        if !bound.bound { throw ExitCode(4) }
    }

    /// What the export's time-stamp tokens prove (format-spec.md §8.7), in lines; `bound` is
    /// false when a trust file was given and no checked token covers an entry of the export.
    static func timeReport(_ r: ExportVerifier.Report, trust: String?) -> (lines: [String], bound: Bool) {
        let covering = r.timestamps.filter { $0.size > (r.firstSeq ?? 0) }
        guard let trust else {
            guard !covering.isEmpty else { return ([], true) }
            return (
                [
                    "TIME: \(covering.count) time-stamp token\(covering.count == 1 ? "" : "s") carried (each over a checkpoint consistent with this one) but not checked: give --tsa-trust FILE, the certificate of the authority or of its CA, to bound when the entries existed"
                ], true
            )
        }
        guard !covering.isEmpty else {
            return (
                [
                    "NO TIME BOUND: the export carries no time-stamp token over its entries (the log has none after entry \(r.firstSeq.map(String.init) ?? "-"), or takes none: auditd --timestamp-authority)"
                ], false
            )
        }
        var out = [
            "TIME: \(covering.count) time-stamp token\(covering.count == 1 ? "" : "s") checked against \(trust) (signature, imprint over the stamped checkpoint, consistency with this one):"
        ]
        let shown = covering.count <= 6 ? covering : Array(covering.prefix(3)) + Array(covering.suffix(3))
        for (i, t) in shown.enumerated() {
            if covering.count > 6 && i == 3 { out.append("  … \(covering.count - 6) more") }
            out.append(
                "  entries up to seq \(t.size - 1) existed no later than \(Timestamp.format(t.time)), by \(t.authority) (\(t.signer))"
            )
        }
        if let newest = covering.last, newest.size < r.treeSize - 1 {
            out.append(
                "  entries from seq \(newest.size) on are not covered by a token yet (the log takes one every timestamp_interval)"
            )
        }
        return (out, true)
    }
}
