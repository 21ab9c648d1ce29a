import Foundation
import Mesh

/// The child `murmur peer` processes of `murmur up`: started with the same binary, each with its
/// output in RUN/<peer>/peer.log, pids recorded in RUN/pids.json. Not thread-safe.
final class LocalCluster {
    private var processes: [String: Process] = [:]
    private let files: RunFiles

    init(topologyPath: String, topology: Topology, peers: [String], files: RunFiles, dataDir: String,
         threads: Int, steps: Int?) throws {
        self.files = files
        var pids: [String: Int32] = [:]
        for id in peers {
            let p = try PeerProcess.launch(id: id, spec: topology.peer(id: id), topologyPath: topologyPath, files: files,
                                           dataDir: dataDir, threads: threads, steps: steps, watchParent: true)
            processes[id] = p
            pids[id] = p.processIdentifier
        }
        try files.writePIDs(pids)
    }

    /// Peers restarted by `murmur rejoin` (their pid in pids.json is no longer our child's).
    var rejoined: [String: Int32] {
        let recorded = files.readPIDs()
        return recorded.filter { id, pid in processes[id].map { $0.processIdentifier != pid } ?? false }
    }

    /// Whether any of our children, or a peer rejoined in their place, still runs.
    var anyRunning: Bool {
        processes.values.contains { $0.isRunning } || rejoined.values.contains { RunFiles.alive($0) }
    }

    /// Exit status of each finished peer; a peer that was killed and rejoined counts by how its
    /// rejoined process ended (read from its summary.json: 0 when it finished its steps).
    var exitCodes: [String: Int32] {
        let again = rejoined
        var codes: [String: Int32] = [:]
        for (id, p) in processes where !p.isRunning {
            if let pid = again[id] {
                if RunFiles.alive(pid) { continue }
                codes[id] = files.summary(id) != nil ? 0 : 1
            } else {
                codes[id] = p.terminationStatus
            }
        }
        return codes
    }

    func signalAll(_ sig: Int32) {
        for p in processes.values where p.isRunning { kill(p.processIdentifier, sig) }
    }
}
