import Foundation
import Golden
import Testing

/// Where `../shared/golden/demo` is, found by walking up from this file to the package root.
/// nil when the shared folder is absent (e.g. a bare clone): the golden test then prints a
/// SKIPPED line instead of passing silently.
enum GoldenLocation {
    static let demoDirectory: URL? = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" && !dir.path.isEmpty {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
                let g = dir.appendingPathComponent("../shared/golden/demo").standardizedFileURL
                return FileManager.default.fileExists(atPath: g.path) ? g : nil
            }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }()
}

@Test func goldenDemoFilesPass() throws {
    guard let dir = GoldenLocation.demoDirectory else {
        print("SKIPPED: ../shared/golden/demo absent — the DeMo golden files were NOT run")
        return
    }
    let results = try GoldenRunner.run(directory: dir)
    for r in results { print("golden \(r.status.rawValue): \(r.file) / \(r.name): \(r.detail)") }
    // chunk sizes + dct basis + 9 transform cases + 10 step files in the shipped set.
    #expect(results.count >= 4)
    for r in results {
        #expect(r.status == .passed, "\(r.file) / \(r.name): \(r.detail)")
    }
}
