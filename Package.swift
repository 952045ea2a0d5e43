// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "auditlog",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AuditBase", targets: ["AuditBase"]),
        .library(name: "SegmentStore", targets: ["SegmentStore"]),
        .library(name: "LogProofs", targets: ["LogProofs"]),
        .library(name: "ChainIndex", targets: ["ChainIndex"]),
        .library(name: "Archive", targets: ["Archive"]),
        .library(name: "AuditWire", targets: ["AuditWire"]),
        .library(name: "AuditClient", targets: ["AuditClient"]),
        .library(name: "WriterWitness", targets: ["WriterWitness"]),
        .library(name: "AuditAccess", targets: ["AuditAccess"]),
        // The fuzz targets' bodies, for FuzzTesting/ (a package of its own) and the replay tests.
        .library(name: "FuzzHarness", targets: ["FuzzHarness"]),
        .executable(name: "auditd", targets: ["auditd"]),
        .executable(name: "auditctl", targets: ["auditctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CZstd", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(
            name: "CCrypto", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]),
        // CRC-32C with the CPU's CRC32 instruction (AuditBase falls back to tables).
        .target(name: "CCRC32C"),
        // The foundation every layer stands on: bytes, CRC-32C, SHA-256, timestamps, durable
        // files with their fault seam, and the error type. It knows nothing of segments or logs.
        .target(name: "AuditBase", dependencies: ["CCRC32C", "CCrypto"]),
        .target(name: "SegmentStore", dependencies: ["AuditBase", "CZstd"]),
        // What a log proves and signs, with no storage: Merkle proofs, signed notes, checkpoints,
        // cosignatures, keys. Witnesses and writers need only this.
        .target(name: "LogProofs", dependencies: ["AuditBase", "CCrypto"]),
        .target(name: "ChainIndex", dependencies: ["AuditBase", "LogProofs", "SegmentStore", "CCrypto"]),
        .target(name: "Archive", dependencies: ["AuditBase", "ChainIndex", "LogProofs", "SegmentStore", "CCrypto"]),
        .target(name: "AuditWire"),
        // Writers keeping the newest checkpoint they verified (services embedding AuditClient).
        .target(name: "WriterWitness", dependencies: ["AuditBase", "AuditClient", "AuditWire", "LogProofs"]),
        // A C2SP tlog-witness: cosigns checkpoints that stay consistent (auditctl witness serve).
        .target(name: "Witness", dependencies: ["AuditBase", "LogProofs"]),
        .target(name: "AuditAccess", dependencies: ["AuditBase", "ChainIndex", "LogProofs"]),
        .target(
            name: "AuditClient",
            dependencies: [
                "AuditWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .executableTarget(
            name: "auditd",
            dependencies: [
                "AuditBase", "ChainIndex", "LogProofs", "SegmentStore", "Archive", "AuditWire", "AuditAccess",
                "Witness",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            // The admin console's pages, compiled into the binary (no files to install).
            resources: [
                .embedInCode("Console/static/index.html"), .embedInCode("Console/static/app.js"),
                .embedInCode("Console/static/api.js"), .embedInCode("Console/static/dom.js"),
                .embedInCode("Console/static/views.js"), .embedInCode("Console/static/operator.js"),
                .embedInCode("Console/static/proof.js"),
                .embedInCode("Console/static/console.css"),
            ]),
        .executableTarget(
            name: "auditctl",
            dependencies: [
                "AuditBase", "ChainIndex", "LogProofs", "SegmentStore", "Archive", "AuditClient", "AuditWire",
                "AuditAccess", "Witness", "WriterWitness",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(name: "TestSupport", dependencies: ["AuditBase"], path: "Tests/TestSupport"),
        .target(
            name: "FuzzHarness",
            dependencies: [
                "AuditBase", "SegmentStore", "ChainIndex", "LogProofs", "Archive", "AuditAccess", "AuditWire",
                "Witness",
            ], path: "Tests/FuzzHarness"),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzHarness"]),
        // Reads Package.swift and Sources/: every arrow between targets points down a layer.
        .testTarget(name: "ArchitectureTests"),
        .testTarget(name: "AuditBaseTests", dependencies: ["AuditBase"]),
        .testTarget(
            name: "ReliabilityTests",
            dependencies: [
                "AuditBase", "LogProofs", "Archive", "AuditAccess", "ChainIndex", "SegmentStore", "TestSupport",
            ]),
        .testTarget(name: "SegmentStoreTests", dependencies: ["AuditBase", "SegmentStore", "TestSupport"]),
        .testTarget(
            name: "ChainIndexTests",
            dependencies: ["AuditBase", "LogProofs", "ChainIndex", "SegmentStore", "TestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "AuditctlTests", dependencies: ["AuditBase", "LogProofs", "ChainIndex", "SegmentStore", "auditctl"]),
        .testTarget(
            name: "ArchiveTests",
            dependencies: [
                "AuditBase", "LogProofs", "Archive", "ChainIndex", "SegmentStore", "TestSupport", "auditctl",
            ]),
        .testTarget(
            name: "WitnessTests",
            dependencies: ["AuditBase", "LogProofs", "Witness", "ChainIndex", "SegmentStore", "TestSupport"]),
        .testTarget(
            name: "AuditdTests",
            dependencies: [
                "AuditBase", "LogProofs", "Archive", "ChainIndex", "SegmentStore", "AuditWire", "AuditClient",
                "TestSupport", "auditd", "auditctl",
            ],
            exclude: ["tamper_proxy.py", "hostile_witness.py"]),
    ]
)
