// swift-tools-version: 6.1
// libFuzzer targets for every parser of bytes from disk or a peer, in a package of their own so
// that `swift test` at the root never builds them with the sanitizers. Build and run with
// `scripts/fuzz TARGET SECONDS` (see README.md beside this file).
import Foundation
import PackageDescription

// A path dependency's identity is its directory's name, which is whatever the clone is called:
// read it from this file's location instead of assuming one.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

func fuzzTarget(_ name: String) -> Target {
    .executableTarget(name: name, dependencies: [.product(name: "FuzzHarness", package: root)])
}

let package = Package(
    name: "auditlog-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: "..")],
    targets: [
        fuzzTarget("FuzzBlock"),
        fuzzTarget("FuzzSealedSegment"),
        fuzzTarget("FuzzOpenSegment"),
        fuzzTarget("FuzzIndexFile"),
        fuzzTarget("FuzzCheckpointLog"),
        fuzzTarget("FuzzEntry"),
        fuzzTarget("FuzzFrame"),
        fuzzTarget("FuzzArchiveFiles"),
        fuzzTarget("FuzzExport"),
    ]
)
