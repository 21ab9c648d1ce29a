import ArgumentParser
import Foundation

/// `murmur status [RUN_DIR]`: a table of every peer of a run, from its logs.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each peer of a run: process, status as seen by the others, step, loss, digest agreement, bytes.",
        discussion: """
        Reads a run folder, running or finished. Columns: process (finished when summary.json exists, else running / dead process from pids.json, or no pid), seen as (the last status event about the peer in the other peers' heartbeat logs, naming who saw what when they differ), last applied step, train loss, digest, whether the digest agrees with the majority at the newest step every peer has logged, mean bytes sent per step, and the age of the newest heartbeat the others received from the peer (or of its own heartbeat log).

        Examples:
          murmur status                     # runs/shakespeare-local4
          murmur status runs/t3
          murmur status --topology topologies/ring8.yaml
        """)

    @Argument(help: "The run folder (default: the checkpoint dir of --topology).")
    var runDir: String?

    @Option(help: "Topology whose `checkpoint.dir` is the run folder, when RUN_DIR is not given.")
    var topology = "topologies/local4.yaml"

    func run() throws {
        let dir = try runDir.map { URL(fileURLWithPath: $0) } ?? RunData.directory(topology: topology)
        print(StatusTable(run: try RunData.load(dir)).render())
    }
}

/// The rows of `murmur status`, computed from a loaded run (pure apart from `alive`).
struct StatusTable {
    /// One peer's row.
    struct Row: Equatable {
        var peer: String
        var process: String
        var seenAs: String
        var step: String
        var loss: String
        var digest: String
        /// true/false at `agreement.step`; nil when the peer has no rounds.
        var agrees: Bool?
        var bytesPerStep: String
        var heartbeatAge: String
    }

    let run: RunData
    var now = Date()
    /// Whether a recorded peer process is live (its pid, with the start time recorded; replaced in tests).
    var alive: (PeerPID) -> Bool = { $0.isAlive }

    var agreement: DigestAgreement { DigestAgreement(run.peers) }

    var rows: [Row] {
        let agreement = self.agreement
        return run.peers.map { p in
            let last = p.lastRound
            return Row(peer: p.id, process: process(p), seenAs: seenAs(p.id), step: last.map { String($0.step + 1) } ?? "-",
                       loss: last?.loss.map { String(format: "%.4f", $0) } ?? "-", digest: last?.digest ?? "-",
                       agrees: agreement.agrees[p.id],
                       bytesPerStep: p.rounds.isEmpty ? "-" : String(p.rounds.reduce(0) { $0 + $1.bytesOut } / p.rounds.count),
                       heartbeatAge: heartbeatAge(p).map(AgeText.format) ?? "-")
        }
    }

    /// finished / stopped early / running / dead process / no pid.
    func process(_ p: PeerRunData) -> String {
        if let s = p.summary { return s.stoppedEarly ? "stopped early" : "finished" }
        guard let pid = run.pids[p.id] else { return "no pid" }
        return alive(pid) ? "running" : "dead process"
    }

    /// The last status event about `id` in each other peer's log: one state when they all agree,
    /// else "dead by p0; alive by p2,p3".
    func seenAs(_ id: String) -> String {
        var latest: [String: String] = [:]
        for observer in run.peers where observer.id != id {
            for e in observer.events {
                if case .status(id, _, let to) = e.event { latest[observer.id] = to }
            }
        }
        let states = Set(latest.values)
        if states.isEmpty { return "-" }
        if states.count == 1 { return states.first! }
        return states.sorted().map { s in "\(s) by " + latest.filter { $0.value == s }.keys.sorted().joined(separator: ",") }
            .joined(separator: "; ")
    }

    /// Seconds since the newest heartbeat another peer received from `p`, else since its own
    /// heartbeat log last changed.
    func heartbeatAge(_ p: PeerRunData) -> Double? {
        var newest: Int64?
        for observer in run.peers where observer.id != p.id {
            for e in observer.events {
                if case .recv(p.id, _, _, _, _, _, _) = e.event, let t = e.timeMs { newest = Swift.max(newest ?? t, t) }
            }
        }
        if let t = newest { return now.timeIntervalSince1970 - Double(t) / 1000 }
        return p.heartbeatsModified.map { now.timeIntervalSince($0) }
    }

    static let header = ["peer", "process", "seen as", "step", "loss", "digest", "agrees", "bytes/step", "hb age"]
    /// Right-aligned columns.
    static let numeric: Set<Int> = [3, 4, 7, 8]

    func render() -> String {
        let agreement = self.agreement
        let at = agreement.step.map { "@\($0)" } ?? ""
        let body = rows.map { r in
            [r.peer, r.process, r.seenAs, r.step, r.loss, r.digest, r.agrees.map { ($0 ? "yes" : "NO") + at } ?? "-",
             r.bytesPerStep, r.heartbeatAge]
        }
        let table = [Self.header] + body
        let widths = Self.header.indices.map { i in table.map { $0[i].count }.max() ?? 0 }
        let lines = table.map { cells in
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return Self.numeric.contains(i) ? pad + c : c + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        let verdict: String
        if let s = agreement.step {
            verdict = agreement.all ? "digests agree at step \(s)" : "digests DIFFER at step \(s)"
        } else {
            verdict = "no common step yet"
        }
        let head = "run \(run.name) (\(run.directory.path)): \(run.peers.count) peers; \(verdict)"
        return ([head] + lines + warnings.map { "warning: " + $0 }).joined(separator: "\n")
    }

    /// Setup problems the peers logged (a peer of another topology…): the newest per peer; then
    /// peers whose updates the others marked `suspect-content` (issue 12).
    var warnings: [String] {
        run.peers.compactMap { p in p.events.last { $0.event.setupWarning != nil }.map { "\(p.id) heard \($0.event.setupWarning!)" } }
            + ContentSuspects(run.peers).lines
    }
}
