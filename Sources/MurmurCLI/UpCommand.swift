import ArgumentParser
import Foundation
import Mesh
import MeshZMQ
import PeerRuntime

/// `murmur up [TOPOLOGY]`: the main job — every local peer of a topology as a child process, a live
/// table, and a summary at the end.
struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start every local peer of a topology, watch them train, and summarise the run.",
        discussion: """
        Fetches the corpus when missing; when the topology turns security on, creates CURVE keys for
        the peers of this machine that have none (never replacing a key file) and checks that every
        other peer's .pub is there (an error names the file and the host to copy it from); starts `murmur peer` for every peer whose endpoints are on this machine
        (logs in RUN/<peer>/peer.log, pids in RUN/pids.json), shows a live table, and prints a summary
        when all peers have finished. Ctrl-C stops every peer gracefully; peers also stop by
        themselves if `murmur up` dies.

        Example:
          murmur up                                  # topologies/local4.yaml
          murmur up topologies/ring8.yaml --steps 200
        """)

    @Argument(help: "Topology file.") var topology = "topologies/local4.yaml"
    @Option(help: "Override the topology's step count.") var steps: Int?
    @Option(help: "Threads per peer.") var threads = 1
    @Option(help: "Folder of the fetched corpus.") var dataDir = "data"
    @Flag(help: "Plain progress lines even on a terminal.") var plain = false
    @Flag(help: "Move an existing run folder aside (RUN.<time>) and start from step 0.") var fresh = false

    func run() throws {
        let topo: Topology
        do { topo = try TopologyParser.load(path: topology) } catch { throw ValidationError("\(error)") }
        let local = topo.localPeers(localAddresses: HostAddresses.current())
        guard !local.isEmpty else {
            throw ValidationError("no peer of \(topology) has its endpoints on this machine; start `murmur peer --id ID` on each host instead")
        }
        let files = RunFiles(directory: URL(fileURLWithPath: topo.checkpoint.dir))
        let running = files.readPIDs().filter { $0.value.isAlive }
        if !running.isEmpty {
            throw ValidationError("run \(topo.run) is already running (peers \(running.keys.sorted().joined(separator: ", ")) in \(files.pidsURL.path)); stop it with Ctrl-C in its terminal or `kill` those pids first")
        }
        if fresh, FileManager.default.fileExists(atPath: files.directory.path) {
            let f = DateFormatter()
            f.dateFormat = "yyyyMMdd-HHmmss"
            let aside = files.directory.path + "." + f.string(from: Date())
            try FileManager.default.moveItem(atPath: files.directory.path, toPath: aside)
            print("moved the previous run folder to \(aside)")
        }
        if topo.data.file == nil {
            let fetcher = CorpusFetcher(directory: URL(fileURLWithPath: dataDir))
            if !fetcher.isPresent { print(try fetcher.fetch { print($0) }) }
        }
        if topo.security.curve {
            // Keys only for this host's peers, nothing replaced; every remote peer's .pub must be here.
            // (UpKeys.Problems and KeyStoreError print as "Error: <what to copy from where>", no usage.)
            let outcome = try UpKeys.prepare(topology: topo, local: local, store: KeyStore(directory: topo.security.keys))
            for id in outcome.created {
                print("created CURVE keys for \(id) in \(topo.security.keys) (copy \(id).pub to every other machine of the run)")
            }
        }
        // `murmur rejoin` starts a peer exactly as this run did.
        try UpSettings(steps: steps, threads: threads, dataDir: dataDir).write(to: files)
        let cluster = try LocalCluster(topologyPath: topology, topology: topo, peers: local.map(\.id), files: files,
                                       dataDir: dataDir, threads: threads, steps: steps)
        let stop = ManagedFlag()
        let signals = SignalWatch { stop.set() }
        defer { signals.cancel() }
        print("murmur up: run \(topo.run), \(local.count) local peers (\(local.map(\.id).joined(separator: " "))), \(steps ?? topo.steps) steps, \(topo.optimizer.kind.rawValue); folder \(files.directory.path)")
        let table = LiveTable(files: files, peers: local.map(\.id), totalSteps: steps ?? topo.steps, tty: !plain && isatty(STDOUT_FILENO) == 1)
        var stopping = false
        while cluster.anyRunning {
            if stop.value && !stopping {
                stopping = true
                print("\nstopping every peer (SIGTERM: checkpoint, BYE) …")
                cluster.signalAll(SIGTERM)
            }
            table.render(exitCodes: cluster.exitCodes)
            Thread.sleep(forTimeInterval: table.tty ? 0.5 : 0.25)
        }
        table.render(exitCodes: cluster.exitCodes, final: true)
        try? FileManager.default.removeItem(at: files.pidsURL)
        let summary = RunSummary(files: files, peers: local.map(\.id))
        print(summary.text(exitCodes: cluster.exitCodes))
        do { try ReportCommand.parse([files.directory.path]).run() } catch { print("report: \(error)") }
        if cluster.exitCodes.values.contains(where: { $0 != 0 }) { throw ExitCode(1) }
    }
}

/// How `murmur up` started its peers (RUN/up.json), so `murmur rejoin` starts one the same way.
struct UpSettings: Codable {
    var steps: Int?
    var threads: Int
    var dataDir: String

    func write(to files: RunFiles) throws {
        try FileManager.default.createDirectory(at: files.directory, withIntermediateDirectories: true)
        try JSONEncoder().encode(self).write(to: files.directory.appendingPathComponent("up.json"), options: .atomic)
    }

    static func read(from files: RunFiles) -> UpSettings? {
        guard let d = FileManager.default.contents(atPath: files.directory.appendingPathComponent("up.json").path) else { return nil }
        return try? JSONDecoder().decode(UpSettings.self, from: d)
    }
}
