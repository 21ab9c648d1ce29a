import Foundation

/// Running Python checks from tests: finds python3, makes `safetensors` and `numpy` importable
/// (installing them with pip into a private folder when missing), and runs scripts.
enum PythonSupport {
    static func which(_ name: String) -> String? {
        (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/\(name)" }
            .first(where: FileManager.default.isExecutableFile)
    }

    static func run(_ exe: String, _ args: [String], env: [String: String] = [:]) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    /// What a check needs.
    enum Setup {
        case ready(python: String, env: [String: String])
        /// The check cannot run here; the reason is printed by the caller.
        case skip(String)
        /// pip exists but failed: a real failure.
        case failed(String)
    }

    /// python3 with safetensors and numpy importable; installs them under `dir`/pylib when needed
    /// (a private folder works even where the system Python refuses global installs).
    static func withSafetensors(in dir: URL) -> Setup {
        guard let python = which("python3") ?? ["/usr/bin/python3"].first(where: FileManager.default.isExecutableFile) else {
            return .skip("python3 not found")
        }
        if run(python, ["-c", "import safetensors, numpy"]).status == 0 { return .ready(python: python, env: [:]) }
        let lib = dir.appendingPathComponent("pylib").path
        let pip = run(python, ["-m", "pip", "install", "--quiet", "--target", lib, "safetensors", "numpy"])
        if pip.status == 0 { return .ready(python: python, env: ["PYTHONPATH": lib]) }
        if run(python, ["-m", "pip", "--version"]).status != 0 { return .skip("pip is missing, cannot install safetensors") }
        return .failed("pip install safetensors failed: \(pip.output)")
    }
}
