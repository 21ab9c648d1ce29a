import Foundation
import FuzzHarness
import Testing

/// The package root, from this file's path (`<root>/Tests/FuzzReplayTests/<file>`).
let packageRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url
}()

/// Every regular file under `dir` (recursively), sorted by path; empty when `dir` is absent.
func inputs(under dir: URL) -> [URL] {
    guard let walk = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: [.isRegularFileKey]) else { return [] }
    return walk.compactMap { $0 as? URL }
        .filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }
        .sorted { $0.path < $1.path }
}

/// Replays the committed fuzz corpus (and any saved crashes) through the same harness the
/// libFuzzer binaries use, so a decoder change that breaks an invariant fails `swift test`.
@Suite struct CorpusReplayTests {
    /// Fewest files each committed corpus must hold: a lost or emptied corpus fails loudly.
    static let minimumFiles = ["header": 20, "update": 40, "topology": 200, "checkpoint": 80, "peer": 100, "catchup": 100]

    @Test(arguments: FuzzHarness.targets)
    func corpusReplaysWithoutFindings(target: String) throws {
        let files = inputs(under: packageRoot.appendingPathComponent("Fuzz/corpus/\(target)"))
        let minimum = Self.minimumFiles[target] ?? 1
        #expect(files.count >= minimum, "Fuzz/corpus/\(target) has \(files.count) files, expected at least \(minimum)")
        for file in files {
            let bytes = [UInt8](try Data(contentsOf: file))
            #expect(throws: Never.self, "\(file.lastPathComponent)") { try FuzzHarness.run(target, bytes) }
        }
    }

    /// `Fuzz/regressions/<target>/`: inputs of bugs the fuzzers (or the harness) found and that were
    /// fixed; `Fuzz/crashes/<target>/`: anything a local fuzz run saved and nobody has fixed yet.
    @Test(arguments: FuzzHarness.targets)
    func regressionsAndSavedCrashesReplayWithoutFindings(target: String) throws {
        let files = ["regressions", "crashes"].flatMap { inputs(under: packageRoot.appendingPathComponent("Fuzz/\($0)/\(target)")) }
        for file in files {
            let bytes = [UInt8](try Data(contentsOf: file))
            #expect(throws: Never.self, "\(file.lastPathComponent)") { try FuzzHarness.run(target, bytes) }
        }
    }

    /// Seeds that are refused on purpose (they reach other code: a subscription frame in the topic
    /// slot, a plain safetensors file that is not a Murmur checkpoint).
    static let rejectedSeeds: Set<String> = ["seed-presence", "seed-plain"]

    @Test(arguments: FuzzHarness.targets)
    func seedsAreAccepted(target: String) throws {
        let seeds = FuzzSeeds.seeds(for: target, root: packageRoot.path)
        #expect(seeds.count >= 4)
        for seed in seeds {
            let outcome = try FuzzHarness.run(target, seed.bytes)
            #expect(outcome.isRejected == Self.rejectedSeeds.contains(seed.name), "seed \(seed.name): \(outcome)")
        }
    }
}
