// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "auditlog",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SegmentStore", targets: ["SegmentStore"]),
        .library(name: "ChainIndex", targets: ["ChainIndex"]),
        .library(name: "Archive", targets: ["Archive"]),
        .executable(name: "auditd", targets: ["auditd"]),
        .executable(name: "auditctl", targets: ["auditctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CZstd", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(
            name: "CCrypto", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]),
        .target(name: "SegmentStore", dependencies: ["CZstd"]),
        .target(name: "ChainIndex", dependencies: ["SegmentStore", "CCrypto"]),
        .target(name: "Archive", dependencies: ["ChainIndex", "SegmentStore"]),
        .executableTarget(
            name: "auditd",
            dependencies: [
                "ChainIndex", "SegmentStore", "Archive",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "auditctl",
            dependencies: [
                "ChainIndex", "SegmentStore", "Archive",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "SegmentStoreTests", dependencies: ["SegmentStore"]),
        .testTarget(
            name: "ChainIndexTests", dependencies: ["ChainIndex", "SegmentStore"],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "AuditctlTests", dependencies: ["ChainIndex", "SegmentStore", "auditctl"]),
    ]
)
