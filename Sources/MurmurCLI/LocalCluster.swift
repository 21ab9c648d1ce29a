import Foundation
import Mesh

/// The child `murmur peer` processes of `murmur up`: started with the same binary, each with its
/// output in RUN/<peer>/peer.log, pids recorded in RUN/pids.json. Not thread-safe.
final class LocalCluster {
    private var processes: [String: Process] = [:]
    /// Our children as recorded in pids.json (pid and start time).
    private var launched: [String: PeerPID] = [:]
    private let files: RunFiles

    init(topologyPath: String, topology: Topology, peers: [String], files: RunFiles, dataDir: String,
         threads: Int, steps: Int?) throws {
        self.files = files
        for id in peers {
            let p = try PeerProcess.launch(id: id, spec: topology.peer(id: id), topologyPath: topologyPath, files: files,
                                           dataDir: dataDir, threads: threads, steps: steps, watchParent: true)
            processes[id] = p
            launched[id] = PeerPID(recording: p.processIdentifier)
        }
        try files.writePIDs(launched)
    }

    /// Peers restarted by `murmur rejoin` (their pid in pids.json is no longer our child's).
    var rejoined: [String: PeerPID] {
        let recorded = files.readPIDs()
        return recorded.filter { id, entry in launched[id].map { $0 != entry } ?? false }
    }

    /// Whether any of our children, or a peer rejoined in their place, still runs.
    var anyRunning: Bool {
        processes.values.contains { $0.isRunning } || rejoined.values.contains { $0.isAlive }
    }

    /// Exit status of each finished peer; a peer that was killed and rejoined counts by how its
    /// rejoined process ended (read from its summary.json: 0 when it finished its steps).
    var exitCodes: [String: Int32] {
        let again = rejoined
        var codes: [String: Int32] = [:]
        for (id, p) in processes where !p.isRunning {
            if let entry = again[id] {
                if entry.isAlive { continue }
                // Exit 3: it ended on a model the majority did not confirm (PeerCommand).
                codes[id] = files.summary(id).map { ($0["success"] as? Bool) == false ? 3 : 0 } ?? 1
            } else {
                codes[id] = p.terminationStatus
            }
        }
        return codes
    }

    /// Signals every child still running, and every peer `murmur rejoin` started in place of one
    /// (it is not our child, but it belongs to this run: left running it would train alone),
    /// each checked against its recorded start time first.
    func signalAll(_ sig: Int32) {
        for (id, p) in processes where p.isRunning {
            do { try (launched[id] ?? PeerPID(pid: p.processIdentifier, startTime: nil)).signal(sig, peer: id) } catch {
                print("murmur up: \(error)")
            }
        }
        for (id, entry) in rejoined where entry.isAlive {
            do { try entry.signal(sig, peer: id) } catch { print("murmur up: \(error)") }
        }
    }
}
