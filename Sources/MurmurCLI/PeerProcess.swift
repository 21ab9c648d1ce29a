import Foundation
import Mesh

/// Starts one `murmur peer` child the way every command does (`up`, `rejoin`, `chaos`): the same
/// binary, output appended to RUN/<id>/peer.log, no standard input. A peer with `netns` in the
/// topology runs inside that network namespace (`ip netns exec NAME …`, which execs, so the pid
/// is the peer's own and signals reach it).
enum PeerProcess {
    /// The murmur binary to run peers with: this process's own executable, else `murmur` on PATH.
    static var binary: String {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return FileManager.default.isExecutableFile(atPath: exe.path) ? exe.path : (which("murmur") ?? exe.path)
    }

    /// Launches the peer; the caller records its pid. Throws when the log cannot be opened or the
    /// process cannot start (e.g. `ip` missing for a namespaced peer).
    static func launch(id: String, spec: PeerSpec?, topologyPath: String, files: RunFiles, dataDir: String,
                       threads: Int, steps: Int?, watchParent: Bool) throws -> Process {
        let dir = files.peerDirectory(id)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let logURL = dir.appendingPathComponent("peer.log")
        if !FileManager.default.fileExists(atPath: logURL.path) { FileManager.default.createFile(atPath: logURL.path, contents: nil) }
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()
        var args = ["peer", "--topology", topologyPath, "--id", id, "--data-dir", dataDir, "--threads", String(threads)]
        if watchParent { args.append("--watch-parent") }
        if let steps { args += ["--steps", String(steps)] }
        if let scale = poisonScale(for: id) { args.append("--poison-scale=\(scale)") }   // "=": a negative value is not an option
        if let who = ProcessInfo.processInfo.environment["MURMUR_IMPERSONATE"], who.split(separator: ",").contains(Substring(id)) {
            args.append("--impersonate")
        }
        let p = Process()
        if let ns = spec?.netns {
            guard let ip = which("ip") else {
                throw LaunchError("peer \(id) runs in network namespace '\(ns)', but the 'ip' command (iproute2) is not installed")
            }
            p.executableURL = URL(fileURLWithPath: ip)
            // Absolute paths: the namespace shares the file system, and the cwd stays.
            p.arguments = ["netns", "exec", ns, binary] + args
        } else {
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = args
        }
        p.standardOutput = log
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Measurements only (issue 12, `scripts/poison.sh`): `MURMUR_POISON=ID:FACTOR[,ID:FACTOR…]`
    /// starts those peers with `--poison-scale FACTOR` (their gradients × FACTOR before DeMo).
    static func poisonScale(for id: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard let spec = environment["MURMUR_POISON"] else { return nil }
        for item in spec.split(separator: ",") {
            let parts = item.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, parts[0] == id, Float(parts[1]) != nil { return parts[1] }
        }
        return nil
    }
}

/// A peer that could not be started or faulted on purpose; the text says what to install or fix.
struct LaunchError: Error, CustomStringConvertible {
    let description: String
    init(_ text: String) { description = text }
}
