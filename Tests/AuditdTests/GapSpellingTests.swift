import AuditBase
import AuditExport
import Foundation
import TestSupport
import Testing

/// An export's proof spells its subtree hashes in base64url from `auditlog-export/7` on
/// (format-spec.md §9.3), a third shorter than the hex of /4 to /6, which both verifiers
/// still read. A block spelled otherwise than its header's version says fails.
@Suite(.serialized) struct GapSpellingTests {
    let proofs = ExportProofTests()

    /// `line` with every gap block respelled by `respell` and, on a header, format `tag`.
    func rewritten(_ line: String, tag: String, _ respell: (Substring) -> String) -> String {
        var o = ExportProofTests.object(line)
        if o["type"] as? String == "header" { o["format"] = tag }
        if let gap = o["gap"] as? [String] {
            o["gap"] = gap.map { b -> String in
                let parts = b.split(separator: ":", maxSplits: 1)
                return parts.count == 2 ? "\(parts[0]):" + respell(parts[1]) : b
            }
        }
        return ExportProofTests.line(o)
    }

    func hex(_ b64: Substring) -> String { Base64URL.decode(String(b64))?.hex ?? "" }

    @Test func aSixthVersionExportInHexStillVerifiesAndSpellingsDoNotMix() async throws {
        let (d, token, key, _, _) = try proofs.setUp()
        defer { d.cleanup() }
        let full = try await proofs.export(d, token, "")
        #expect(ExportProofTests.object(full[0])["format"] as? String == "auditlog-export/7")
        let blocks = full.flatMap { ExportProofTests.object($0)["gap"] as? [String] ?? [] }
        #expect(blocks.count > 5, "the org's entries are interleaved with another's: most lines have a gap")
        for b in blocks {
            let hash = b.split(separator: ":", maxSplits: 1).last ?? ""
            #expect(hash.count == 43 && Base64URL.decode(String(hash))?.count == 32, "\(b)")
        }
        var (s, out) = try proofs.verify(d, key, full, "v7.ndjson")
        #expect(s == 0 && out.hasPrefix("OK: complete"), "\(out)")

        // The same export as /6 wrote it: hex blocks under a /6 header. Both verifiers pass it.
        (s, out) = try proofs.verify(d, key, full.map { rewritten($0, tag: "auditlog-export/6", hex) }, "v6.ndjson")
        #expect(s == 0 && out.hasPrefix("OK: complete"), "\(out)")

        // Hex under a /7 header, base64url under a /6 one: each a block that is not what its
        // header says.
        (s, out) = try proofs.verify(d, key, full.map { rewritten($0, tag: "auditlog-export/7", hex) }, "mix7.ndjson")
        #expect(s == 1 && out.contains("gap block"), "\(out)")
        (s, out) = try proofs.verify(
            d, key, full.map { rewritten($0, tag: "auditlog-export/6") { String($0) } }, "mix6.ndjson")
        #expect(s == 1 && out.contains("gap block"), "\(out)")

        // A non-canonical spelling of the same 32 bytes (the last character's two spare bits
        // set) is refused, not decoded: one file, one spelling of each proof.
        let loose = full.map {
            rewritten($0, tag: "auditlog-export/7") { h in
                let last = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
                guard let c = h.last, let i = last.firstIndex(of: c) else { return String(h) }
                return h.dropLast() + String(last[i | 1])
            }
        }
        (s, out) = try proofs.verify(d, key, loose, "loose.ndjson")
        #expect(s == 1 && out.contains("gap block"), "\(out)")
        #expect(d.stop() == 0)
    }
}
