import ArgumentParser
import Foundation
import Golden

/// `murmur verify-golden DIR`: runs reference-tensor case files and prints one line per case.
struct VerifyGoldenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-golden",
        abstract: "Check the DeMo optimizer and the model against reference tensors.",
        discussion: """
        Runs every *.json case file in DIR (kinds demo-chunk-sizes, demo-dct-basis, demo-transform,
        demo-step and gpt), prints one line per case and a last line 'N passed, M failed'. Exits 1 on
        any failure.

        Example:
          murmur verify-golden ../shared/golden/demo
          murmur verify-golden ../shared/golden/gpt
        """)

    @Argument(help: "Folder of golden case files (default: ../shared/golden/demo and ../shared/golden/gpt).")
    var directories: [String] = []

    func run() throws {
        var dirs = directories.map { URL(fileURLWithPath: $0) }
        if dirs.isEmpty {
            guard let shared = GoldenRunner.defaultSharedDirectory() else {
                throw ValidationError("no folder given and ../shared/golden was not found; pass a folder of case files")
            }
            dirs = [shared.appendingPathComponent("demo"), shared.appendingPathComponent("gpt")]
        }
        var passed = 0, failed = 0, unsupported = 0
        for dir in dirs {
            let results: [GoldenCaseResult]
            do { results = try GoldenRunner.run(directory: dir) } catch {
                print("error: \(error)")
                throw ExitCode(2)
            }
            for r in results {
                let tag: String
                switch r.status {
                case .passed: tag = "PASS"; passed += 1
                case .failed: tag = "FAIL"; failed += 1
                case .unsupported: tag = "SKIP"; unsupported += 1
                }
                print("\(tag)  \(r.file) :: \(r.name)  \(r.detail)")
            }
        }
        let extra = unsupported > 0 ? ", \(unsupported) skipped" : ""
        print("\(passed) passed, \(failed) failed\(extra)")
        if failed > 0 { throw ExitCode(1) }
    }
}
