import ArgumentParser

/// The `murmur` command line: the composition root of the package.
public struct MurmurCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "murmur",
        abstract: "Train a small GPT across peers over weak links with DeMo (Decoupled Momentum).",
        subcommands: [])
    public init() {}
}
