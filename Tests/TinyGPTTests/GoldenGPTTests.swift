import Foundation
import Golden
import Testing

/// The shared golden folder `../shared/golden/gpt` next to the package root, found by walking up
/// from this file; nil (and a visible message) when it is absent.
func sharedGoldenGPTDirectory(filePath: String = #filePath) -> URL? {
    var dir = URL(fileURLWithPath: filePath).deletingLastPathComponent()
    for _ in 0..<6 {
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
            let golden = dir.appendingPathComponent("../shared/golden/gpt").standardizedFileURL
            if FileManager.default.fileExists(atPath: golden.path) { return golden }
            print("TinyGPT golden tests not run: ../shared absent (looked for \(golden.path))")
            return nil
        }
        dir = dir.deletingLastPathComponent()
    }
    print("TinyGPT golden tests not run: ../shared absent (package root not found)")
    return nil
}

@Suite struct GoldenGPTTests {
    init() { useSingleThreadedBLAS() }

    @Test func everyGPTCasePasses() throws {
        guard let dir = sharedGoldenGPTDirectory() else { return }
        let results = try GoldenRunner.run(directory: dir)
        let gpt = results.filter { $0.file.hasPrefix("gpt") }
        #expect(!gpt.isEmpty, "no gpt cases found in \(dir.path)")
        for r in gpt {
            print("golden \(r.name): \(r.status.rawValue) — \(r.detail)")
            #expect(r.status == .passed, "\(r.name): \(r.detail)")
        }
    }
}
