import ArgumentParser
import Foundation
import Mesh
import Tensors

/// `murmur chaos`: scripted faults on a running (or a fresh) local cluster, then a recovery report.
struct ChaosCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Crash, freeze or cut off peers of a local cluster on a schedule, and report the recovery.",
        discussion: """
        Every --kill-every, one running peer (chosen with --seed) gets the next fault of --kinds
        (cycled), and recovers --down-for later, --faults times:
          kill       SIGKILL, then the peer is started again (a crash and a restart);
          stop       SIGSTOP, then SIGCONT (a hang: the process lives, but says nothing);
          partition  every link of the peer's network namespace goes down, then up again (a real
                     partition; only for peers with `netns` in the topology, see scripts/netlab.sh).
        With no cluster of the run running, one is started first (`murmur up TOPOLOGY --fresh` in
        the background, output in RUN.up.log). When the run ends, it reports per fault: detection
        time (until another peer declared the victim dead), recovery time (fault over to back in
        step with the majority's digest, and how it caught up), steps lost, and whether every final
        digest agrees.

        Examples:
          murmur chaos topologies/local4.yaml --kill-every 20s --down-for 10s --seed 7 --steps 1500
          murmur chaos lab.yaml --kinds kill,kill,stop,partition --faults 8 --kill-every 30s --down-for 8s
        """)

    @Argument(help: "Topology file.") var topology = "topologies/local4.yaml"
    @Option(help: "Time between faults, e.g. 20s.") var killEvery = "20s"
    @Option(help: "How long a fault lasts (down, stopped or cut off), e.g. 10s.") var downFor = "10s"
    @Option(help: "Fault kinds, used in turn: kill, stop, partition (comma-separated).") var kinds = "kill"
    @Option(help: "Seed for choosing victims.") var seed: UInt64 = 7
    @Option(help: "Number of faults.") var faults = 3
    @Option(help: "Steps, when a fresh cluster is started.") var steps: Int?
    @Option(help: "Give up waiting for the run to end after this many seconds.") var timeout = 3600.0

    func run() throws {
        let topo: Topology
        do { topo = try TopologyParser.load(path: topology) } catch { throw ValidationError("\(error)") }
        guard let every = DurationText.parse(killEvery)?.seconds, let down = DurationText.parse(downFor)?.seconds, every > 0, down >= 0 else {
            throw ValidationError("--kill-every and --down-for take durations such as 500ms, 20s, 2m")
        }
        let schedule = try Self.parseKinds(kinds)
        if schedule.contains(.partition) && !topo.peers.contains(where: { $0.netns != nil }) {
            throw ValidationError("--kinds partition needs peers with `netns` in the topology (each in its own network namespace; see scripts/netlab.sh)")
        }
        let files = RunFiles(directory: URL(fileURLWithPath: topo.checkpoint.dir))
        if !files.readPIDs().values.contains(where: \.isAlive) {
            try startCluster(files)
        }
        var rng = SeededRNG(seed: seed)
        var done: [ChaosFault] = []
        let deadline = Date().addingTimeInterval(timeout)
        func running() -> [String: PeerPID] { files.readPIDs().filter { $0.value.isAlive } }
        for n in 0..<faults {
            guard sleepWhileRunning(every, files: files) else { break }
            let kind = schedule[n % schedule.count]
            let live = running().keys.sorted().filter { kind != .partition || topo.peer(id: $0)?.netns != nil }
            guard !live.isEmpty else { break }
            let victim = live[Int(rng.next() % UInt64(live.count))]
            guard let entry = running()[victim] else { continue }
            let step = (files.lastRound(victim)?["step"] as? Int) ?? -1
            let began = Self.nowMillis()
            switch kind {
            case .kill:
                // Every signal checks the pid's recorded start time: a reused pid is refused.
                do { try entry.signal(SIGKILL, peer: victim) } catch { print("chaos: \(error)"); continue }
                print("chaos: killed \(victim) (pid \(entry.pid)) at step \(step); restarting in \(downFor)")
                Thread.sleep(forTimeInterval: down)
                guard !running().isEmpty else { print("chaos: the run ended while \(victim) was down"); break }
                let restarted = try PeerLauncher.restart(id: victim, topology: topo, topologyPath: topology, files: files, dataDir: nil, threads: nil)
                var pids = files.readPIDs()
                pids[victim] = restarted
                try files.writePIDs(pids)
                print("chaos: restarted \(victim) (pid \(restarted.pid))")
            case .stop:
                do { try entry.signal(SIGSTOP, peer: victim) } catch { print("chaos: \(error)"); continue }
                print("chaos: stopped \(victim) (pid \(entry.pid)) at step \(step); continuing it in \(downFor)")
                Thread.sleep(forTimeInterval: down)
                do { try entry.signal(SIGCONT, peer: victim); print("chaos: continued \(victim)") } catch { print("chaos: \(error)") }
            case .partition:
                let ns = topo.peer(id: victim)!.netns!
                let links = try NamespaceLinks.cut(ns)
                print("chaos: cut \(victim) off (netns \(ns): \(links.joined(separator: ", ")) down) at step \(step); healing in \(downFor)")
                Thread.sleep(forTimeInterval: down)
                try NamespaceLinks.restore(ns, links)
                print("chaos: healed \(victim)'s links")
            }
            done.append(ChaosFault(kind: kind, peer: victim, began: began, ended: Self.nowMillis(), stepAtFault: step))
        }
        print("chaos: faults done; waiting for the run to end …")
        while !running().isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 1) }
        let peers = topo.localPeers(localAddresses: HostAddresses.current()).map(\.id)
        let report = ChaosReport(faults: done, peers: peers, files: files)
        print(report.text)
        try? report.json.write(to: files.directory.appendingPathComponent("chaos.json"), options: .atomic)
    }

    static func parseKinds(_ text: String) throws -> [ChaosFault.Kind] {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let kinds = parts.compactMap(ChaosFault.Kind.init(rawValue:))
        guard !parts.isEmpty, kinds.count == parts.count else {
            throw ValidationError("--kinds takes a comma-separated list of kill, stop and partition (got '\(text)')")
        }
        return kinds
    }

    func startCluster(_ files: RunFiles) throws {
        try FileManager.default.createDirectory(at: files.directory.deletingLastPathComponent(), withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: PeerProcess.binary)
        p.arguments = ["up", topology, "--fresh", "--plain"] + (steps.map { ["--steps", String($0)] } ?? [])
        let logURL = files.directory.deletingLastPathComponent().appendingPathComponent("\(files.directory.lastPathComponent).up.log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        p.standardOutput = log
        p.standardError = log
        try p.run()
        print("chaos: started a fresh cluster (murmur up, output in \(logURL.path))")
        for _ in 0..<600 where !files.readPIDs().values.contains(where: \.isAlive) { Thread.sleep(forTimeInterval: 0.1) }
    }

    /// Sleeps `seconds` in small slices; false if the cluster stopped meanwhile.
    func sleepWhileRunning(_ seconds: Double, files: RunFiles) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if !files.readPIDs().values.contains(where: \.isAlive) { return false }
            Thread.sleep(forTimeInterval: min(0.2, max(0, end.timeIntervalSinceNow)))
        }
        return true
    }

    static func nowMillis() -> Int { Int(Date().timeIntervalSince1970 * 1000) }
}

/// Takes a network namespace's links down and up again with `ip -n NS link set DEV down|up`.
enum NamespaceLinks {
    /// Every link of `ns` but loopback that is up, now set down; returns their names.
    static func cut(_ ns: String) throws -> [String] {
        let names = linkNames(try ip(["-n", ns, "-o", "link", "show", "up"]))
        guard !names.isEmpty else { throw LaunchError("network namespace '\(ns)' has no link to cut (ip -n \(ns) link shows only loopback)") }
        for n in names { _ = try ip(["-n", ns, "link", "set", "dev", n, "down"]) }
        return names
    }

    /// The link names of `ip -o link show` output, loopback left out. Lines look like
    /// "2: eth0@if5: <BROADCAST,…,UP,LOWER_UP> mtu …": the name ends at '@' or ':'.
    static func linkNames(_ listing: String) -> [String] {
        listing.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: ":", maxSplits: 2)
            guard fields.count >= 2 else { return nil }
            let name = fields[1].trimmingCharacters(in: .whitespaces).split(separator: "@").first.map(String.init) ?? ""
            return name.isEmpty || name == "lo" ? nil : name
        }
    }

    static func restore(_ ns: String, _ links: [String]) throws {
        for n in links { _ = try ip(["-n", ns, "link", "set", "dev", n, "up"]) }
    }

    static func ip(_ args: [String]) throws -> String {
        guard let path = which("ip") else { throw LaunchError("partitions need the 'ip' command (Debian package iproute2)") }
        let (status, text) = try runCapturing([path] + args)
        guard status == 0 else { throw LaunchError("ip \(args.joined(separator: " ")) failed: \(text)") }
        return text
    }
}
