// swift-tools-version:6.0
// libFuzzer binaries over Murmur's decoders and message handlers (see Sources/FuzzHarness and scripts/fuzz.sh).
// Build only with the fuzzer flags, e.g.:
//   swift build -c release --package-path Fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
//     -Xswiftc -use-ld=lld
// lld is needed: SwiftPM links executables with `--defsym main=<module>_main`, which gold cannot
// reconcile with libFuzzer's own `main`; each target therefore defines `<module>_main` as a call
// into libFuzzer's driver, so the binary behaves exactly like a stock libFuzzer binary.
import PackageDescription

let targets = ["header", "update", "topology", "checkpoint", "peer", "catchup"]

let package = Package(
    name: "MurmurFuzz",
    platforms: [.macOS(.v13)],
    products: targets.map { .executable(name: "fuzz-\($0)", targets: ["fuzz-\($0)"]) },
    dependencies: [.package(name: "Murmur", path: "..")],
    targets: targets.map {
        .executableTarget(name: "fuzz-\($0)", dependencies: [.product(name: "FuzzHarness", package: "Murmur")],
                          path: "Sources/fuzz-\($0)",
                          // `@_extern(c)` declares libFuzzer's LLVMFuzzerRunDriver (see the sources).
                          swiftSettings: [.enableExperimentalFeature("Extern")])
    },
    swiftLanguageModes: [.v6]
)
