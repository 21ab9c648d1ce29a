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
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let binary = FileManager.default.isExecutableFile(atPath: exe.path) ? exe.path : (which("murmur") ?? exe.path)
        var pids: [String: Int32] = [:]
        for id in peers {
            let dir = files.peerDirectory(id)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let logURL = dir.appendingPathComponent("peer.log")
            FileManager.default.createFile(atPath: logURL.path, contents: nil)
            let log = try FileHandle(forWritingTo: logURL)
            log.seekToEndOfFile()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            var args = ["peer", "--topology", topologyPath, "--id", id, "--data-dir", dataDir, "--threads", String(threads), "--watch-parent"]
            if let steps { args += ["--steps", String(steps)] }
            p.arguments = args
            p.standardOutput = log
            p.standardError = log
            p.standardInput = FileHandle.nullDevice
            try p.run()
            processes[id] = p
            pids[id] = p.processIdentifier
        }
        try files.writePIDs(pids)
    }

    var anyRunning: Bool { processes.values.contains { $0.isRunning } }

    /// Exit status of each finished peer.
    var exitCodes: [String: Int32] {
        processes.filter { !$0.value.isRunning }.mapValues { $0.terminationStatus }
    }

    func signalAll(_ sig: Int32) {
        for p in processes.values where p.isRunning { kill(p.processIdentifier, sig) }
    }
}
