import Foundation

/// Lets a fuzz binary double as its own seed writer (no second executable to build).
public enum FuzzSeedWriter {
    /// When the environment has `MURMUR_FUZZ_SEEDS=DIR`, writes `FuzzSeeds.seeds(for: target)` into
    /// DIR (created if needed), prints how many, and ends the process with status 0. The package
    /// root comes from `MURMUR_FUZZ_ROOT`, else from `sourceFile` (`<root>/Fuzz/Sources/<t>/<f>.swift`).
    public static func writeIfAsked(target: String, sourceFile: String) {
        let env = ProcessInfo.processInfo.environment
        guard let dir = env["MURMUR_FUZZ_SEEDS"], !dir.isEmpty else { return }
        var root = URL(fileURLWithPath: sourceFile)
        for _ in 0..<4 { root.deleteLastPathComponent() }
        let rootPath = env["MURMUR_FUZZ_ROOT"] ?? root.path
        let seeds = FuzzSeeds.seeds(for: target, root: rootPath)
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for s in seeds {
                try Data(s.bytes).write(to: URL(fileURLWithPath: dir).appendingPathComponent(s.name))
            }
        } catch {
            FileHandle.standardError.write(Data("fuzz-\(target): cannot write seeds to \(dir): \(error)\n".utf8))
            exit(1)
        }
        FileHandle.standardOutput.write(Data("fuzz-\(target): wrote \(seeds.count) seeds to \(dir)\n".utf8))
        _exit(0)   // skip the leak checker's exit report: nothing here is a fuzzing result
    }
}
