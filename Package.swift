// swift-tools-version:6.0
// Murmur: DeMo (Decoupled Momentum) training across peers over a ZeroMQ mesh.
import PackageDescription

let package = Package(
    name: "Murmur",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "murmur", targets: ["murmur"]),
        // libFuzzer entry points live in the nested package Fuzz/ (built with -sanitize=fuzzer).
        .library(name: "FuzzHarness", targets: ["FuzzHarness"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // Ed25519 signatures on broadcasts (issue 16 item 2), SHA-256 of snapshots.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    ],
    targets: [
        // C edges: each imported by exactly one Swift module.
        .systemLibrary(name: "CZMQ", path: "Sources/CZMQ"),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),

        .target(name: "Tensors", dependencies: ["COpenBLAS"]),
        .target(name: "Checkpointing"),
        .target(name: "DeMo", dependencies: ["Tensors"]),
        .target(name: "TinyGPT", dependencies: ["Tensors"]),
        .target(name: "Mesh", dependencies: [.product(name: "Yams", package: "Yams")]),
        .target(name: "MeshZMQ", dependencies: ["Mesh", "CZMQ", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Membership", dependencies: ["Mesh"]),
        .target(name: "PeerRuntime", dependencies: ["Mesh", "Membership", "DeMo", "TinyGPT", "Checkpointing", "Tensors",
                                                   .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Golden", dependencies: ["DeMo", "TinyGPT", "Checkpointing", "Tensors"]),
        .target(name: "MurmurCLI", dependencies: [
            "Tensors", "Checkpointing", "DeMo", "TinyGPT", "Mesh", "MeshZMQ", "Membership", "PeerRuntime", "Golden",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "murmur", dependencies: ["MurmurCLI"]),
        // The deterministic face of the peer's I/O boundaries for tests: simulated mesh, manual
        // clock, workers with simulated compute time (kill, restart, stop, slow, partition).
        .target(name: "MeshTesting", dependencies: ["Mesh", "Membership", "PeerRuntime"]),
        .target(name: "FuzzHarness", dependencies: ["Mesh", "DeMo", "Checkpointing", "PeerRuntime", "TinyGPT", "Tensors", "MeshTesting", "Membership"]),

        .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
        .testTarget(name: "CheckpointingTests", dependencies: ["Checkpointing"]),
        .testTarget(name: "DeMoTests", dependencies: ["DeMo", "Golden", "Tensors"]),
        .testTarget(name: "TinyGPTTests", dependencies: ["TinyGPT", "Golden", "Tensors", "Checkpointing"]),
        .testTarget(name: "MeshTests", dependencies: ["Mesh"]),
        .testTarget(name: "MeshZMQTests", dependencies: ["MeshZMQ", "Mesh"]),
        .testTarget(name: "MembershipTests", dependencies: ["Membership"]),
        .testTarget(name: "PeerRuntimeTests", dependencies: ["PeerRuntime", "MeshTesting", "Membership", "Mesh", "MeshZMQ", "TinyGPT", "DeMo", "Tensors", "Checkpointing"]),
        .testTarget(name: "FuzzReplayTests", dependencies: ["FuzzHarness", "Mesh", "DeMo", "Checkpointing", "PeerRuntime"]),
        .testTarget(name: "MurmurCLITests", dependencies: ["MurmurCLI", "TinyGPT", "Tensors", "PeerRuntime", "Checkpointing"]),
    ],
    swiftLanguageModes: [.v6]
)
