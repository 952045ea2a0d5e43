import Foundation
import Testing

/// The console's ES modules form no import circle, and its leaves (`api.js`, `dom.js`) import
/// nothing: a view can be loaded, read and tested without the shell.
@Suite struct ConsoleModuleTests {
    static let dir = LayeringTests.root.appendingPathComponent("Sources/auditd/Console/static")

    /// Each module's local imports (`import … from "./x.js"`).
    static func graph() throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for f in try FileManager.default.contentsOfDirectory(atPath: dir.path) where f.hasSuffix(".js") {
            let text = try String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)
            out[f] = text.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("import "), let r = line.range(of: "from \"./") else { return nil }
                return String(line[r.upperBound...].prefix { $0 != "\"" })
            }
        }
        return out
    }

    @Test func noImportCircleAndTheLeavesImportNothing() throws {
        let g = try Self.graph()
        #expect(g["app.js"] != nil && g.count >= 6, "console modules not found: \(g.keys.sorted())")
        #expect(g["api.js"] == [] && g["dom.js"] == [], "\(g)")
        // Depth-first search for a back edge.
        var state: [String: Int] = [:]
        var circle: [String] = []
        func visit(_ m: String, _ path: [String]) {
            if state[m] == 1 {
                circle = path + [m]
                return
            }
            if state[m] == 2 || !circle.isEmpty { return }
            state[m] = 1
            for n in g[m] ?? [] { visit(n, path + [m]) }
            state[m] = 2
        }
        for m in g.keys.sorted() { visit(m, []) }
        #expect(circle.isEmpty, "import circle: \(circle.joined(separator: " → "))")
        // Every module imported is one the package embeds and the read port serves.
        let manifest = try String(
            contentsOf: LayeringTests.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        for m in g.keys { #expect(manifest.contains("Console/static/\(m)"), "\(m) is not embedded by Package.swift") }
    }
}
