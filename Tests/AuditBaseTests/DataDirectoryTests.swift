import AuditBase
import Foundation
import Testing

/// `DataDirectory` names the files format-spec.md §1 lists, and only those.
@Suite struct DataDirectoryTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The first path of each line of §1's listing, relative to DATA/.
    static func specPaths() throws -> [String] {
        let spec = try String(contentsOf: root.appendingPathComponent("format-spec.md"), encoding: .utf8)
        guard let section = spec.range(of: "## 1. The data directory"),
            let start = spec.range(of: "DATA/\n", range: section.upperBound..<spec.endIndex),
            let end = spec.range(of: "```", range: start.upperBound..<spec.endIndex)
        else { throw CocoaError(.fileReadCorruptFile) }
        return spec[start.upperBound..<end.lowerBound].split(separator: "\n").compactMap { line in
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { return nil }
            return line.split(separator: " ").first.map { String($0).replacingOccurrences(of: ",", with: "") }
        }
    }

    @Test func everyNameIsTheSpecs() throws {
        let d = DataDirectory("/data/log1")
        let named: [String: String] = [
            "lock": d.lock, "info": d.info, "segments": d.segments, "tree": d.tree, "treeLeaves": d.treeLeaves,
            "index": d.index, "orgState": d.orgState, "checkpoints": d.checkpoints, "cosigned": d.cosigned,
            "tokens": d.tokens, "holds": d.holds, "retention": d.retention, "daemonSocket": d.daemonSocket,
            "following": d.following, "personal": d.personal,
        ]
        let spec = try Self.specPaths()
        #expect(spec.count >= 15, "format-spec §1's listing was not found: \(spec)")
        for (name, path) in named {
            #expect(path.hasPrefix("/data/log1/"), "\(name)")
            let rel = String(path.dropFirst("/data/log1/".count))
            // A directory is named by the spec's files in it; a file by itself (levels by pattern).
            let listed = spec.contains {
                $0 == rel || $0.hasPrefix(rel + "/") || $0 == rel.replacingOccurrences(of: "level-00", with: "level-NN")
            }
            #expect(listed, "DataDirectory.\(name) = \(rel) is not in format-spec §1")
        }
        // Every top-level name of the spec is one DataDirectory gives.
        let tops = Set(named.values.map { String($0.dropFirst("/data/log1/".count).split(separator: "/").first ?? "") })
        for p in spec {
            let top = String(p.split(separator: "/").first ?? "")
            #expect(tops.contains(top), "format-spec §1 lists \(p), whose top-level \(top) DataDirectory does not name")
        }
        #expect(d.defaultKey == "/data/auditd-keys/log1.key")
        #expect(DataDirectory("rel/dir").defaultKey.hasSuffix("/rel/auditd-keys/dir.key"))
    }
}
