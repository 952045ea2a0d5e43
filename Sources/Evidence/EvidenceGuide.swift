/// `VERIFY.md` (format-spec.md §9.5): how an auditor checks the pack, in plain words.
public enum EvidenceGuide {
    public static func text(org: String, from: String, to: String, key: String) -> String {
        """
        # Verifying this evidence pack

        Org `\(org)`, every entry received from `\(from)` to `\(to)`.

        The log's verifier key (its first one, which the operator publishes):

            \(key)

        Compare it with the key the operator publishes (a web page, a contract annex): every
        check below trusts that key and nothing the operator hands over with the pack. If the
        log's key was handed on since (format-spec.md §8.8), `export.ndjson`'s header carries
        the statements, each signed by the key it replaced and by the new one; the commands
        below follow them from this key, say so (`KEYS:`), and refuse any other.

        ## With auditctl

            auditctl verify-evidence . --key '\(key)'

        It checks that every file is the one `pack.json` names; that `export.ndjson` and
        `export.csv` are authentic and complete for the range (every entry is in the log's
        signed tree, none is missing, and the export was itself recorded in the log); that
        `sample.json` holds exactly the entries the seed draws, each with its inclusion proof;
        that every figure of `summary.json` follows from the entries; and that `controls.json`
        is the published mapping. Add `--witness VKEY` to require witnesses' cosignatures and
        `--tsa-trust FILE` to check the exports' RFC 3161 time-stamps.

        ## Without our tools

            python3 verify_export.py export.ndjson --key '\(key)'
            python3 verify_export.py export.csv --key '\(key)'
            python3 verify_export.py --evidence . --key '\(key)'

        `verify_export.py` uses Python's standard library only and was written from the
        format specification alone: read it. The last command also re-draws the sample and
        recomputes the figures.

        ## The sample

        The seed is SHA-256 of the checkpoint's root hash followed by the auditor's seed, if
        one was given when the pack was made (`seed=`). Draw n (n = 0, 1, …) is the first
        8 bytes, big-endian, of SHA-256("auditlog evidence sample v1\\n" || seed || n as 8
        bytes big-endian), modulo the number of selected entries; an index drawn before is
        skipped. Neither the company nor the vendor chooses the root: it is fixed by every
        entry in the log, and each export (the packs' own included) is recorded in the log,
        so asking for packs until one looks convenient leaves a trace. Give your own seed to
        rule that out.

        The controls named in `controls.json` and the report are controls the entries can
        evidence; the mapping is not a certification.

        """
    }
}
