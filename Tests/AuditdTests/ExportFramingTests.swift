import Foundation
import TestSupport
import Testing

/// An export's frame (format-spec.md §9.3): a header first, a trailer last. The spec-only
/// verifier reads an export a line at a time (the busiest org's 1.9 GB export in 22 MB), so
/// it learns that a file is cut or has something after its trailer only at the end: both
/// verifiers still refuse either.
@Suite(.serialized) struct ExportFramingTests {
    let proofs = ExportProofTests()

    @Test func aCutExportAndDataAfterTheTrailerFailInBothVerifiers() async throws {
        let (d, token, key, _, _) = try proofs.setUp()
        defer { d.cleanup() }
        let full = try await proofs.export(d, token, "")
        var (s, out) = try proofs.verify(d, key, full, "whole.ndjson")
        #expect(s == 0 && out.hasPrefix("OK: complete"), "\(out)")
        // Cut before its trailer, at several places.
        for keep in [1, 2, full.count / 2, full.count - 1] {
            (s, out) = try proofs.verify(d, key, Array(full.prefix(keep)), "cut-\(keep).ndjson")
            #expect(s == 1 && out.hasPrefix("FAILED"), "\(keep) lines: \(out)")
        }
        // A line, or a second trailer, after the trailer.
        for extra in [full[1], full[full.count - 1]] {
            (s, out) = try proofs.verify(d, key, full + [extra], "after.ndjson")
            #expect(s == 1 && out.contains("after the trailer"), "\(out)")
        }
        // Nothing at all, or the header alone.
        (s, out) = try proofs.verify(d, key, [full[0]], "header.ndjson")
        #expect(s == 1 && out.hasPrefix("FAILED"), "\(out)")
        #expect(d.stop() == 0)
    }
}
