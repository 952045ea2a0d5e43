import Foundation
import Testing

/// The package's drawing, checked: every source target sits on a layer, and a target may only
/// depend on (and import) targets of lower layers that `Package.swift` declares for it. A new
/// target must be placed here before it builds into a green test run.
@Suite struct LayeringTests {
    /// Lower numbers are lower layers. Targets on one layer never depend on each other.
    static let layers: [String: Int] = [
        // C shims over system libraries.
        "CCRC32C": 0, "CCrypto": 0, "CZstd": 0, "CAllocator": 0,
        // Foundations with no knowledge of logs: bytes, files, hashes; the wire codec.
        "AuditBase": 1, "AuditWire": 1,
        // Segment files; what a log proves and signs; the writers' client.
        "SegmentStore": 2, "LogProofs": 2, "AuditClient": 2,
        // The entry and its chain rule; what stands on proofs alone: witnesses, time-stamps.
        "AuditEntries": 3, "Witness": 3, "WriterWitness": 3, "TimeStamping": 3,
        // The tree and its checkpoints; the org index; read access; the personal store.
        "LogTree": 4, "AuditIndex": 4, "AuditAccess": 4, "PersonalStore": 4,
        // The ledger over them.
        "ChainIndex": 5,
        // The archive tier, which retires segments from the ledger's directory.
        "Archive": 6,
        // What reads every tier: the export format, whole-directory verification; replication
        // of the ledger and its bundles into the bucket.
        "AuditExport": 7, "Verification": 7, "Replication": 7,
        // What stands on exports: the auditor's evidence pack.
        "Evidence": 8,
        // Programs.
        "auditd": 9, "auditctl": 9,
    ]

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func everySourceTargetHasALayer() throws {
        let dirs = try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("Sources").path)
        let unplaced = dirs.filter { !$0.hasPrefix(".") && Self.layers[$0] == nil }.sorted()
        #expect(unplaced.isEmpty, "targets without a layer in LayeringTests.layers: \(unplaced)")
    }

    @Test func declaredDependenciesPointDown() throws {
        let declared = try Self.declaredDependencies()
        #expect(
            declared.count >= Self.layers.count - 3, "Package.swift's targets were not found: \(declared.keys.sorted())"
        )
        var wrong: [String] = []
        for (target, deps) in declared.sorted(by: { $0.key < $1.key }) {
            guard let mine = Self.layers[target] else { continue }
            for d in deps {
                guard let theirs = Self.layers[d] else { continue }
                if theirs >= mine { wrong.append("\(target) (layer \(mine)) depends on \(d) (layer \(theirs))") }
            }
        }
        #expect(wrong.isEmpty, "dependencies that do not point down: \(wrong)")
    }

    @Test func importsAreDeclaredAndPointDown() throws {
        let declared = try Self.declaredDependencies()
        var wrong: [String] = []
        for (target, mine) in Self.layers.sorted(by: { $0.key < $1.key }) {
            let dir = Self.root.appendingPathComponent("Sources/\(target)")
            guard let files = FileManager.default.enumerator(atPath: dir.path) else { continue }
            for case let file as String in files where file.hasSuffix(".swift") {
                let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
                for module in Self.imports(text) {
                    guard let theirs = Self.layers[module], module != target else { continue }
                    if theirs >= mine {
                        wrong.append("\(target)/\(file) imports \(module) (layer \(theirs) is not below \(mine))")
                    } else if !(declared[target] ?? []).contains(module) {
                        wrong.append("\(target)/\(file) imports \(module), which Package.swift does not declare for it")
                    }
                }
            }
        }
        #expect(wrong.isEmpty, "imports against the drawing: \(wrong)")
    }

    @Test func onlySourceTargetsArePublished() throws {
        // Test helpers (FuzzHarness, TestSupport) compile against `package` symbols and test-only
        // code: a product over them would make them part of the package's public surface.
        let text = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let products = text.split(separator: "\n").filter {
            $0.contains(".library(name:") || $0.contains(".executable(name:")
        }
        #expect(products.count >= 10, "Package.swift's products were not found")
        let published = products.flatMap { line in
            line.split(separator: "\"").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        }
        let outside = Set(published).filter { Self.layers[$0] == nil }
        #expect(outside.isEmpty, "products over targets outside Sources/: \(outside.sorted())")
    }

    @Test func theCheckSeesAWrongArrow() {
        // The checker itself: an import of a higher layer is found.
        #expect(
            Self.imports("import Foundation\n@testable import ChainIndex\nimport struct AuditBase.Hash\n")
                == ["Foundation", "ChainIndex", "AuditBase"])
        #expect(Self.layers["SegmentStore"]! < Self.layers["ChainIndex"]!)
    }

    /// The modules a Swift file imports (`import M`, `@testable import M`, `import struct M.T`).
    static func imports(_ text: String) -> [String] {
        text.split(separator: "\n").compactMap { line -> String? in
            var words = line.split(separator: " ").map(String.init)
            while let w = words.first, w.hasPrefix("@") || w == "public" || w == "package" || w == "internal" {
                words.removeFirst()
            }
            guard words.first == "import", words.count >= 2 else { return nil }
            let name = words.count >= 3 ? words[2] : words[1]
            return String(name.split(separator: ".").first ?? "")
        }
    }

    /// Each target's dependencies on other targets of this package, read from Package.swift
    /// (products of other packages are left out).
    static func declaredDependencies() throws -> [String: [String]] {
        let text = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let chars = Array(text)
        var out: [String: [String]] = [:]
        var i = 0
        let nameKey = Array("name: \"")
        let depsKey = Array("dependencies: [")
        func starts(_ key: [Character], at j: Int) -> Bool {
            j + key.count <= chars.count && Array(chars[j..<j + key.count]) == key
        }
        func quoted(at j: Int) -> (String, Int) {
            var k = j
            while k < chars.count, chars[k] != "\"" { k += 1 }
            return (String(chars[j..<k]), k)
        }
        var current: String?
        while i < chars.count {
            if starts(nameKey, at: i) {
                let (name, end) = quoted(at: i + nameKey.count)
                current = name
                i = end
            } else if starts(depsKey, at: i), let target = current {
                // The bracketed list, minus `.product(...)` entries.
                var depth = 1
                var k = i + depsKey.count
                var parens = 0
                var deps: [String] = []
                while k < chars.count, depth > 0 {
                    switch chars[k] {
                    case "[": depth += 1
                    case "]": depth -= 1
                    case "(": parens += 1
                    case ")": parens -= 1
                    case "\"" where parens == 0:
                        let (name, end) = quoted(at: k + 1)
                        deps.append(name)
                        k = end
                    default: break
                    }
                    k += 1
                }
                out[target] = deps
                current = nil
                i = k
            } else {
                i += 1
            }
        }
        return out
    }
}

/// The storage engine knows bytes, sequence numbers and files: not the archive tier, orgs or
/// the command line, which live above it. (The foundation names no tier or command either.)
@Suite struct StorageKnowsNothingAboveItTests {
    static let words: [String: [String]] = [
        "SegmentStore": ["archiv", "stub", "bundle", "auditctl", "auditd", " org", "org'", "orgs"],
        "AuditBase": ["archiv", "stub", "bundle", "auditctl"],
    ]

    @Test func noStorageFileMentionsAHigherConcern() throws {
        var found: [String] = []
        for (target, words) in Self.words.sorted(by: { $0.key < $1.key }) {
            let dir = LayeringTests.root.appendingPathComponent("Sources/\(target)")
            for file in try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            where file.hasSuffix(".swift") {
                let lines = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8).split(
                    separator: "\n", omittingEmptySubsequences: false)
                for (i, line) in lines.enumerated() {
                    let lower = line.lowercased()
                    for w in words where lower.contains(w) {
                        found.append(
                            "\(target)/\(file):\(i + 1) mentions \"\(w.trimmingCharacters(in: .whitespaces))\": \(line.trimmingCharacters(in: .whitespaces))"
                        )
                    }
                }
            }
        }
        #expect(found.isEmpty, "\(found.joined(separator: "\n"))")
    }
}
