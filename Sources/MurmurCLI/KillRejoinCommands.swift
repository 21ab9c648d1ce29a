import ArgumentParser
import Foundation
import Mesh

/// Resolves a run folder from `--topology` (its checkpoint.dir), for commands that act on peers.
struct RunLocator: ParsableArguments {
    @Option(help: "Topology file of the run.") var topology = "topologies/local4.yaml"

    func load() throws -> (Topology, RunFiles) {
        let topo: Topology
        do { topo = try TopologyParser.load(path: topology) } catch { throw ValidationError("\(error)") }
        return (topo, RunFiles(directory: URL(fileURLWithPath: topo.checkpoint.dir)))
    }
}

/// `murmur kill ID`: sends a signal to one running peer.
struct KillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill",
        abstract: "Send a signal to one running peer (to test failure detection and rejoin).",
        discussion: """
        kill = SIGKILL (crash: no checkpoint, no BYE), term = SIGTERM (graceful: checkpoint, BYE, exit 0),
        stop = SIGSTOP (hang: the others mark it suspect, then dead), cont = SIGCONT (resume a stopped peer).

        Examples:
          murmur kill p2                      # crash p2 of topologies/local4.yaml
          murmur kill p1 --signal stop        # freeze p1 …
          murmur kill p1 --signal cont        # … and let it go on
        """)

    @Argument(help: "Peer id.") var id: String
    @Option(help: "kill, term, stop or cont.") var signal = "kill"
    @OptionGroup var locator: RunLocator

    func run() throws {
        let (topo, files) = try locator.load()
        let sig: Int32
        switch signal {
        case "kill": sig = SIGKILL
        case "term": sig = SIGTERM
        case "stop": sig = SIGSTOP
        case "cont": sig = SIGCONT
        default: throw ValidationError("unknown --signal '\(signal)': use kill, term, stop or cont")
        }
        guard topo.peer(id: id) != nil else {
            throw ValidationError("peer '\(id)' is not in \(locator.topology); its peers are \(topo.peers.map(\.id).joined(separator: ", "))")
        }
        guard let entry = files.readPIDs()[id] else {
            throw ValidationError("peer \(id) of run \(topo.run) is not running (no pid in \(files.pidsURL.path)); start the run with `murmur up` or the peer with `murmur rejoin \(id)`")
        }
        if entry.state == .gone {
            throw ValidationError("peer \(id) of run \(topo.run) is not running (pid \(entry.pid) in \(files.pidsURL.path) has exited); start the run with `murmur up` or the peer with `murmur rejoin \(id)`")
        }
        // Checks the start time recorded with the pid: a reused pid is refused, not signalled.
        try entry.signal(sig, peer: id)  // a LaunchError: printed as "Error: …", exit status 1
        print("sent SIG\(signal.uppercased()) to \(id) (pid \(entry.pid))")
    }
}

/// `murmur rejoin ID`: starts one peer again, as `murmur up` did; it restores its newest good
/// checkpoint, bumps its incarnation and catches up from the others.
struct RejoinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rejoin",
        abstract: "Start one peer of a running cluster again (restore checkpoint, catch up, train on).",
        discussion: """
        The peer runs in the background, its output appended to RUN/<id>/peer.log, its pid written to
        RUN/pids.json. Follow it with `murmur logs ID --events status --follow`.

        Example:
          murmur kill p2 && sleep 10 && murmur rejoin p2
        """)

    @Argument(help: "Peer id.") var id: String
    @OptionGroup var locator: RunLocator
    @Option(help: "Folder of the fetched corpus (default: as `murmur up` used).") var dataDir: String?
    @Option(help: "Threads for the peer (default: as `murmur up` used).") var threads: Int?

    func run() throws {
        let (topo, files) = try locator.load()
        guard topo.peer(id: id) != nil else {
            throw ValidationError("peer '\(id)' is not in \(locator.topology); its peers are \(topo.peers.map(\.id).joined(separator: ", "))")
        }
        var pids = files.readPIDs()
        if let entry = pids[id], entry.isAlive {
            throw ValidationError("peer \(id) is still running (pid \(entry.pid)); stop it first with `murmur kill \(id)`")
        }
        let entry = try PeerLauncher.restart(id: id, topology: topo, topologyPath: locator.topology, files: files, dataDir: dataDir, threads: threads)
        pids[id] = entry
        try files.writePIDs(pids)
        let logURL = files.peerDirectory(id).appendingPathComponent("peer.log")
        print("started \(id) again (pid \(entry.pid)); log: \(logURL.path)")
    }
}

/// Starts one `murmur peer` in the background the way `murmur up` did (RUN/up.json), its output
/// appended to RUN/<id>/peer.log. Returns its pid and start time; the caller records them.
enum PeerLauncher {
    static func restart(id: String, topology: Topology, topologyPath: String, files: RunFiles, dataDir: String?,
                        threads: Int?) throws -> PeerPID {
        let up = UpSettings.read(from: files)
        let p = try PeerProcess.launch(id: id, spec: topology.peer(id: id), topologyPath: topologyPath, files: files,
                                       dataDir: dataDir ?? up?.dataDir ?? "data", threads: threads ?? up?.threads ?? 1,
                                       steps: up?.steps, watchParent: false)
        return PeerPID(recording: p.processIdentifier)
    }
}
