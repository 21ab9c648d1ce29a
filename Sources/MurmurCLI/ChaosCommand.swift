import ArgumentParser
import Foundation
import Mesh
import Tensors

/// `murmur chaos`: scripted crashes on a running (or a fresh) local cluster, then a recovery report.
struct ChaosCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Crash peers of a local cluster on a schedule, restart them, and report the recovery.",
        discussion: """
        Every --kill-every, one running peer (chosen with --seed) is killed with SIGKILL and restarted
        --down-for later, --faults times. With no cluster of the run running, one is started first
        (`murmur up TOPOLOGY --fresh` in the background, output in RUN/up.log). When the run ends, it
        reports per fault: detection time (until another peer declared the victim dead), rejoin time
        (restart to caught up, and how), steps lost (re-done from the checkpoint), and whether every
        final digest agrees.

        Example:
          murmur chaos topologies/local4.yaml --kill-every 20s --down-for 10s --seed 7 --steps 1500
        """)

    @Argument(help: "Topology file.") var topology = "topologies/local4.yaml"
    @Option(help: "Time between faults, e.g. 20s.") var killEvery = "20s"
    @Option(help: "How long a killed peer stays down, e.g. 10s.") var downFor = "10s"
    @Option(help: "Seed for choosing victims.") var seed: UInt64 = 7
    @Option(help: "Number of crashes.") var faults = 3
    @Option(help: "Steps, when a fresh cluster is started.") var steps: Int?
    @Option(help: "Give up waiting for the run to end after this many seconds.") var timeout = 3600.0

    struct Fault { var peer: String; var killedAt: Int; var restartedAt: Int; var stepAtKill: Int }

    func run() throws {
        let topo: Topology
        do { topo = try TopologyParser.load(path: topology) } catch { throw ValidationError("\(error)") }
        guard let every = DurationText.parse(killEvery)?.seconds, let down = DurationText.parse(downFor)?.seconds, every > 0, down >= 0 else {
            throw ValidationError("--kill-every and --down-for take durations such as 500ms, 20s, 2m")
        }
        let files = RunFiles(directory: URL(fileURLWithPath: topo.checkpoint.dir))
        if files.readPIDs().values.filter(RunFiles.alive).isEmpty {
            try startCluster(files)
        }
        var rng = SeededRNG(seed: seed)
        var done: [Fault] = []
        let deadline = Date().addingTimeInterval(timeout)
        func running() -> [String: Int32] { files.readPIDs().filter { RunFiles.alive($0.value) } }
        for _ in 0..<faults {
            guard sleepWhileRunning(every, files: files) else { break }
            let live = running().keys.sorted()
            guard !live.isEmpty else { break }
            let victim = live[Int(rng.next() % UInt64(live.count))]
            guard let pid = running()[victim] else { continue }
            let step = (files.lastRound(victim)?["step"] as? Int) ?? -1
            kill(pid, SIGKILL)
            let killedAt = Self.nowMillis()
            print("chaos: killed \(victim) (pid \(pid)) at step \(step); restarting in \(downFor)")
            Thread.sleep(forTimeInterval: down)
            guard !running().isEmpty else { print("chaos: the run ended while \(victim) was down"); break }
            let newPid = try PeerLauncher.restart(id: victim, topologyPath: topology, files: files, dataDir: nil, threads: nil)
            var pids = files.readPIDs()
            pids[victim] = newPid
            try files.writePIDs(pids)
            print("chaos: restarted \(victim) (pid \(newPid))")
            done.append(Fault(peer: victim, killedAt: killedAt, restartedAt: Self.nowMillis(), stepAtKill: step))
        }
        print("chaos: faults done; waiting for the run to end …")
        while !running().isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 1) }
        print(report(done, files: files, peers: topo.localPeers(localAddresses: HostAddresses.current()).map(\.id)))
    }

    func startCluster(_ files: RunFiles) throws {
        try FileManager.default.createDirectory(at: files.directory.deletingLastPathComponent(), withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        p.arguments = ["up", topology, "--fresh", "--plain"] + (steps.map { ["--steps", String($0)] } ?? [])
        let logURL = files.directory.deletingLastPathComponent().appendingPathComponent("\(files.directory.lastPathComponent).up.log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        p.standardOutput = log
        p.standardError = log
        try p.run()
        print("chaos: started a fresh cluster (murmur up, output in \(logURL.path))")
        for _ in 0..<600 where files.readPIDs().values.filter(RunFiles.alive).isEmpty { Thread.sleep(forTimeInterval: 0.1) }
    }

    /// Sleeps `seconds` in small slices; false if the cluster stopped meanwhile.
    func sleepWhileRunning(_ seconds: Double, files: RunFiles) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if files.readPIDs().values.filter(RunFiles.alive).isEmpty { return false }
            Thread.sleep(forTimeInterval: min(0.2, max(0, end.timeIntervalSinceNow)))
        }
        return true
    }

    static func nowMillis() -> Int { Int(Date().timeIntervalSince1970 * 1000) }

    func report(_ faults: [Fault], files: RunFiles, peers: [String]) -> String {
        var lines = ["", "recovery report (\(faults.count) faults)"]
        for f in faults {
            let detections = peers.filter { $0 != f.peer }.compactMap { observer in
                files.heartbeats(observer).first {
                    ($0["time_ms"] as? Int ?? 0) >= f.killedAt && $0["from"] as? String == f.peer && $0["status"] as? String == "dead"
                }.map { ($0["time_ms"] as! Int) - f.killedAt }
            }
            let mine = files.heartbeats(f.peer).filter { ($0["time_ms"] as? Int ?? 0) >= f.restartedAt }
            let asked = mine.first { $0["event"] as? String == "catchup" && $0["result"] as? String == "requested" }
            let caught = mine.first { $0["event"] as? String == "catchup" && $0["result"] as? String == "done" }
            let lost = (asked?["from_step"] as? Int).map { f.stepAtKill + 1 - $0 }
            lines.append("  \(f.peer): killed at step \(f.stepAtKill); detected dead after "
                + (detections.min().map { "\($0) ms" } ?? "- (restarted before the dead timeout)")
                + "; caught up " + (caught.map { "\(($0["time_ms"] as! Int) - f.restartedAt) ms after restart by \($0["mode"] ?? "?") at step \($0["step"] ?? "?")" } ?? "- (never)")
                + "; steps lost (re-done from its checkpoint): " + (lost.map { "\(max(0, $0))" } ?? "-"))
        }
        var finals: [String: String] = [:]
        for id in peers {
            if let last = files.rounds(id).max(by: { ($0["step"] as? Int ?? -1) < ($1["step"] as? Int ?? -1) }) {
                finals[id] = "\(last["step"] ?? "?")/\(last["digest"] ?? "?")"
            }
        }
        let agree = Set(finals.values).count == 1 && finals.count == peers.count
        lines.append("  final digests agree: " + (agree ? "yes (\(finals.values.first!))" : "NO \(finals.sorted { $0.key < $1.key })"))
        return lines.joined(separator: "\n")
    }
}
