// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "auditlog",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AuditBase", targets: ["AuditBase"]),
        .library(name: "SegmentStore", targets: ["SegmentStore"]),
        .library(name: "LogProofs", targets: ["LogProofs"]),
        .library(name: "AuditEntries", targets: ["AuditEntries"]),
        .library(name: "LogTree", targets: ["LogTree"]),
        .library(name: "AuditIndex", targets: ["AuditIndex"]),
        .library(name: "ChainIndex", targets: ["ChainIndex"]),
        .library(name: "AuditExport", targets: ["AuditExport"]),
        .library(name: "Verification", targets: ["Verification"]),
        .library(name: "Archive", targets: ["Archive"]),
        .library(name: "Replication", targets: ["Replication"]),
        .library(name: "AuditWire", targets: ["AuditWire"]),
        .library(name: "AuditClient", targets: ["AuditClient"]),
        .library(name: "WriterWitness", targets: ["WriterWitness"]),
        .library(name: "AuditAccess", targets: ["AuditAccess"]),
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
        // The daemon's allocator: jemalloc (Debian `libjemalloc-dev`) and its settings, linked
        // into auditd only (Sources/CAllocator/allocator.c says why).
        .target(name: "CAllocator", linkerSettings: [.linkedLibrary("jemalloc")]),
        // The foundation every layer stands on: bytes, CRC-32C, SHA-256, timestamps, durable
        // files with their fault seam, and the error type. It knows nothing of segments or logs.
        .target(name: "AuditBase", dependencies: ["CCRC32C", "CCrypto"]),
        .target(name: "SegmentStore", dependencies: ["AuditBase", "CZstd"]),
        // What a log proves and signs, with no storage: Merkle proofs, signed notes, checkpoints,
        // cosignatures, keys. Witnesses and writers need only this.
        .target(name: "LogProofs", dependencies: ["AuditBase", "CCrypto"]),
        // The entry: its schema, canonical bytes, the link and the chain rule, text search.
        .target(name: "AuditEntries", dependencies: ["AuditBase", "LogProofs"]),
        // The personal store: the values that entries' commitments stand for, encrypted per
        // subject, outside every immutable file; the one part of a log that can forget.
        .target(name: "PersonalStore", dependencies: ["AuditBase", "AuditEntries"]),
        // The Merkle tree's hashes on disk and the signed checkpoints beside them.
        .target(name: "LogTree", dependencies: ["AuditBase", "LogProofs", "AuditEntries"]),
        // The per-org index: live postings, sealed index files, queries.
        .target(name: "AuditIndex", dependencies: ["AuditBase", "LogProofs", "SegmentStore", "AuditEntries"]),
        // The ledger: sequencing, the durable write, recovery and reading over the layers below.
        .target(
            name: "ChainIndex",
            dependencies: [
                "AuditBase", "LogProofs", "SegmentStore", "AuditEntries", "LogTree", "AuditIndex", "PersonalStore",
            ]),
        // The export format: what the read port writes and an auditor's verifier reads.
        .target(
            name: "AuditExport",
            dependencies: ["AuditBase", "LogProofs", "AuditEntries", "AuditIndex", "Archive", "TimeStamping"]),
        // The auditor's evidence pack: sample, figures, control mapping, report, and their check.
        .target(
            name: "Evidence",
            dependencies: ["AuditBase", "LogProofs", "AuditExport", "TimeStamping"]),
        // The whole-directory check behind `auditctl verify` and the daemon's recheck.
        .target(
            name: "Verification",
            dependencies: [
                "AuditBase", "LogProofs", "SegmentStore", "AuditEntries", "LogTree", "AuditIndex", "ChainIndex",
                "Archive", "PersonalStore",
            ]),
        .target(
            name: "Archive",
            dependencies: [
                "AuditBase", "AuditEntries", "AuditIndex", "ChainIndex", "LogProofs", "LogTree", "SegmentStore",
                "CCrypto",
            ]),
        // The log's second home: bundles at seal, tail objects and checkpoints into the bucket,
        // the publication rule, and recovery from the bucket alone.
        .target(
            name: "Replication",
            dependencies: [
                "AuditBase", "AuditEntries", "AuditIndex", "ChainIndex", "LogProofs", "LogTree", "SegmentStore",
                "Archive",
            ]),
        .target(name: "AuditWire"),
        // Writers keeping the newest checkpoint they verified (services embedding AuditClient).
        .target(name: "WriterWitness", dependencies: ["AuditBase", "AuditClient", "AuditWire", "LogProofs"]),
        // A C2SP tlog-witness: cosigns checkpoints that stay consistent (auditctl witness serve).
        .target(name: "Witness", dependencies: ["AuditBase", "LogProofs"]),
        // RFC 3161: what a time-stamping authority is asked to sign, and its tokens checked.
        .target(name: "TimeStamping", dependencies: ["AuditBase", "LogProofs", "CCrypto"]),
        .target(name: "AuditAccess", dependencies: ["AuditBase", "AuditEntries", "LogProofs"]),
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
                "AuditBase", "AuditEntries", "AuditIndex", "ChainIndex", "AuditExport", "Verification", "LogProofs",
                "SegmentStore", "Archive", "Replication", "AuditWire", "AuditAccess", "Witness", "PersonalStore",
                "TimeStamping", "Evidence", "CAllocator",
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
                .embedInCode("Console/static/proof.js"), .embedInCode("Console/static/consistency.js"),
                .embedInCode("Console/static/chart.js"), .embedInCode("Console/static/urlstate.js"),
                .embedInCode("Console/static/archived.js"), .embedInCode("Console/static/exports.js"),
                .embedInCode("Console/static/time.js"), .embedInCode("Console/static/rows.js"),
                .embedInCode("Console/static/detail.js"), .embedInCode("Console/static/personal.js"),
                .embedInCode("Console/static/console.css"),
                // The spec-only export verifier (a link to scripts/verify_export.py), for evidence packs.
                .embedInCode("Evidence/verify_export.py"),
            ]),
        .executableTarget(
            name: "auditctl",
            dependencies: [
                "AuditBase", "AuditEntries", "AuditIndex", "LogTree", "ChainIndex", "AuditExport", "Verification",
                "LogProofs", "SegmentStore", "Archive", "Replication", "AuditClient", "AuditWire", "AuditAccess",
                "Witness", "WriterWitness", "TimeStamping", "Evidence",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(name: "TestSupport", dependencies: ["AuditBase", "AuditWire"], path: "Tests/TestSupport"),
        .target(
            name: "FuzzHarness",
            dependencies: [
                "AuditBase", "SegmentStore", "AuditEntries", "AuditIndex", "LogTree", "ChainIndex", "AuditExport",
                "LogProofs", "Archive", "AuditAccess", "AuditWire", "Witness", "PersonalStore", "TimeStamping",
                "Evidence",
            ], path: "Tests/FuzzHarness"),
        // The fuzz targets' bodies are FuzzHarness's; `scripts/fuzz` builds this with libFuzzer,
        // a normal build makes it a replayer of saved inputs (FuzzTesting/README.md).
        .executableTarget(name: "auditfuzz", dependencies: ["FuzzHarness"], path: "FuzzTesting/auditfuzz"),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzHarness"]),
        // Reads Package.swift and Sources/: every arrow between targets points down a layer.
        .testTarget(name: "ArchitectureTests"),
        .testTarget(name: "AuditBaseTests", dependencies: ["AuditBase"]),
        // Reads the wire vectors from format-spec.md.
        .testTarget(name: "AuditWireTests", dependencies: ["AuditWire"]),
        .testTarget(name: "AuditAccessTests", dependencies: ["AuditAccess", "AuditBase"]),
        // The client library and the writer's witness against a fake ingest socket.
        .testTarget(name: "AuditClientTests", dependencies: ["AuditClient", "AuditWire", "TestSupport"]),
        .testTarget(
            name: "WriterWitnessTests",
            dependencies: ["WriterWitness", "AuditClient", "AuditWire", "AuditBase", "LogProofs", "TestSupport"]),
        .testTarget(
            name: "ReliabilityTests",
            dependencies: [
                "AuditBase", "LogProofs", "Archive", "AuditAccess", "AuditEntries", "ChainIndex", "Verification",
                "SegmentStore", "TestSupport",
            ]),
        // Against a real RFC 3161 authority on loopback (scripts/tsa-server: openssl ts -reply).
        .testTarget(
            name: "TimeStampingTests", dependencies: ["TimeStamping", "AuditBase", "LogProofs", "TestSupport"]),
        .testTarget(
            name: "SegmentStoreTests",
            dependencies: ["AuditBase", "SegmentStore", "ChainIndex", "TestSupport", "CZstd"]),
        .testTarget(
            name: "ChainIndexTests",
            dependencies: [
                "AuditBase", "LogProofs", "AuditEntries", "AuditIndex", "LogTree", "ChainIndex", "Verification",
                "SegmentStore", "TestSupport", "PersonalStore",
            ],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "AuditctlTests",
            dependencies: [
                "AuditBase", "LogProofs", "AuditEntries", "LogTree", "ChainIndex", "Verification", "SegmentStore",
                "TestSupport", "auditctl",
            ]),
        .testTarget(
            name: "ArchiveTests",
            dependencies: [
                "AuditBase", "LogProofs", "Archive", "AuditEntries", "AuditIndex", "ChainIndex", "Verification",
                "SegmentStore", "TestSupport", "auditctl",
            ]),
        // Against the Ceph gateway TestSupport starts: replication and recovery from the bucket.
        .testTarget(
            name: "ReplicationTests",
            dependencies: [
                "AuditBase", "LogProofs", "Archive", "AuditEntries", "ChainIndex", "SegmentStore", "Replication",
                "TestSupport",
            ]),
        .testTarget(
            name: "WitnessTests",
            dependencies: [
                "AuditBase", "LogProofs", "Witness", "AuditEntries", "ChainIndex", "SegmentStore", "TestSupport",
            ]),
        .testTarget(
            name: "AuditdTests",
            dependencies: [
                "AuditBase", "LogProofs", "Archive", "AuditEntries", "AuditIndex", "LogTree", "ChainIndex",
                "AuditExport", "SegmentStore", "AuditWire", "AuditClient", "AuditAccess", "TestSupport", "auditd",
                "auditctl",
            ],
            exclude: ["tamper_proxy.py", "hostile_witness.py", "outage_proxy.py"]),
    ]
)
