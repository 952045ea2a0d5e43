// swift-tools-version: 6.1
// Benchmarks live in their own package so that `swift test` at the root never builds them.
import Foundation
import PackageDescription

// A path dependency's identity is its directory's name, which is whatever the clone is called:
// read it from this file's location instead of assuming one.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "auditlog-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // The peer the benchmark compares with: the system's SQLite (libsqlite3-dev).
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        .executableTarget(
            name: "auditbench",
            dependencies: [
                "CSQLite",
                .product(name: "AuditBase", package: root),
                .product(name: "LogProofs", package: root),
                .product(name: "AuditEntries", package: root),
                .product(name: "LogTree", package: root),
                .product(name: "AuditIndex", package: root),
                .product(name: "ChainIndex", package: root),
                .product(name: "SegmentStore", package: root),
                .product(name: "AuditClient", package: root),
                .product(name: "AuditWire", package: root),
                .product(name: "Archive", package: root),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/auditbench"),
        .executableTarget(
            name: "AuditBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "AuditBase", package: root),
                .product(name: "LogProofs", package: root),
                .product(name: "AuditEntries", package: root),
                .product(name: "LogTree", package: root),
                .product(name: "ChainIndex", package: root),
                .product(name: "SegmentStore", package: root),
            ],
            path: "Benchmarks/AuditBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ]
)
