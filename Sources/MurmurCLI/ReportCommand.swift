import ArgumentParser
import Foundation

/// `murmur report RUN_DIR [--out FILE]`: one self-contained HTML file with SVG figures of a run.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a self-contained HTML report (inline SVG figures, opens offline) of a run folder.",
        discussion: """
        Reads RUN_DIR/<peer>/{rounds.jsonl,heartbeats.jsonl,summary.json} and draws train loss per step for every peer (deaths and rejoins marked), bytes per step on a log scale (real bytes sent, the reference DeMo accounting, dense AdamW) and a swimlane of each peer's status as seen by the others, under a header with peers, steps, final validation losses, the bytes ratio, whether the final digests agree and fault counts. Missing or half-written files give a note in the report, not an error, so a run in progress can be reported too.

        Examples:
          murmur report runs/shakespeare-local4
          murmur report runs/t3 --out /tmp/t3.html
        """)

    @Argument(help: "The run folder (runs/<run>, the `checkpoint.dir` of the topology).")
    var runDir: String

    @Option(name: .shortAndLong, help: "Output HTML file (default: RUN_DIR/report.html).")
    var out: String?

    func run() throws {
        let run = try RunData.load(URL(fileURLWithPath: runDir))
        let target = URL(fileURLWithPath: out ?? URL(fileURLWithPath: runDir).appendingPathComponent("report.html").path)
        let html = ReportHTML(run: run).render()
        do {
            try Data(html.utf8).write(to: target, options: .atomic)
        } catch {
            throw ReportWriteError(path: target.path, reason: error.localizedDescription)
        }
        let rounds = run.peers.reduce(0) { $0 + $1.rounds.count }
        print("wrote \(target.path) (\(html.utf8.count / 1024) KiB): \(run.peers.count) peers, \(rounds) rounds; open it in a browser (works offline)")
    }
}

/// The report could not be written.
struct ReportWriteError: Error, CustomStringConvertible {
    var path: String
    var reason: String
    var description: String { "cannot write \(path): \(reason); choose a writable file with --out FILE" }
}
