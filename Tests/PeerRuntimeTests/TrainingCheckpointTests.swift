import Checkpointing
import Foundation
import Tensors
import Testing
import TinyGPT
@testable import PeerRuntime

@Suite struct TrainingCheckpointTests {
    static func sample() throws -> TrainingCheckpoint {
        let config = try GPTConfig.preset(named: "nano")
        let n = GPTParameters.layout(for: config).totalCount
        var c = TrainingCheckpoint(config: config, step: 42, incarnation: 3, runID: 0xABCD,
                                   parameters: (0..<n).map { Float($0 % 97) * 0.01 }, extra: ["peer": "p1"])
        c.residual = (0..<n).map { Float($0 % 13) * -0.001 }
        return c
    }

    @Test func roundTripKeepsEverything() throws {
        let c = try Self.sample()
        let d = try TrainingCheckpoint.decode(try c.encoded())
        #expect(d.parameters == c.parameters)
        #expect(d.residual == c.residual)
        #expect(d.adamM == nil)
        #expect(d.step == 42 && d.incarnation == 3 && d.runID == 0xABCD)
        #expect(d.config == c.config)
        #expect(d.extra["peer"] == "p1")
    }

    @Test func aFlippedBitAnywhereInTheDataIsCaught() throws {
        let bytes = [UInt8](try Self.sample().encoded())
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        var rng = SeededRNG(seed: 77)
        for _ in 0..<20 {
            var b = bytes
            let i = Int.random(in: (8 + headerLength)..<b.count, using: &rng)
            b[i] ^= 0x04
            #expect(throws: (any Error).self) { try TrainingCheckpoint.decode(Data(b)) }
        }
        #expect(throws: (any Error).self) { try TrainingCheckpoint.decode(Data(bytes.prefix(bytes.count / 2))) }
    }

    /// The checkpoint is a standard safetensors file whose parameters carry GPT-2's names and
    /// shapes: Python's `safetensors` reads it (installed with pip when missing).
    @Test func pythonSafetensorsReadsTheGPT2Layout() throws {
        guard let python = Self.which("python3") ?? ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: FileManager.default.isExecutableFile) else {
            print("SKIPPED pythonSafetensorsReadsTheGPT2Layout: python3 not found")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("ckpt.safetensors")
        try Self.sample().encoded().write(to: file)
        // Installed into a private folder: works with a system Python that refuses global installs.
        let lib = dir.appendingPathComponent("pylib").path
        var env = ["PYTHONPATH": lib]
        let have = Self.run(python, ["-c", "import safetensors, numpy"]).status == 0
        if have { env = [:] } else {
            let pip = Self.run(python, ["-m", "pip", "install", "--quiet", "--target", lib, "safetensors", "numpy"])
            if pip.status != 0 {
                if Self.run(python, ["-m", "pip", "--version"]).status != 0 {
                    print("SKIPPED pythonSafetensorsReadsTheGPT2Layout: pip is missing, cannot install safetensors")
                    return
                }
                Issue.record("pip install safetensors failed: \(pip.output)")
                return
            }
        }
        // Expected GPT-2 names and shapes, written out independently of the Swift layout code.
        let script = """
        import sys
        from safetensors.numpy import load_file
        t = load_file(sys.argv[1])
        V, C, T, L = 256, 32, 32, 1
        want = {"transformer.wte.weight": (V, C), "transformer.wpe.weight": (T, C),
                "transformer.ln_f.weight": (C,), "transformer.ln_f.bias": (C,)}
        for i in range(L):
            p = f"transformer.h.{i}."
            want.update({p+"ln_1.weight": (C,), p+"ln_1.bias": (C,), p+"attn.c_attn.weight": (C, 3*C),
                         p+"attn.c_attn.bias": (3*C,), p+"attn.c_proj.weight": (C, C), p+"attn.c_proj.bias": (C,),
                         p+"ln_2.weight": (C,), p+"ln_2.bias": (C,), p+"mlp.c_fc.weight": (C, 4*C),
                         p+"mlp.c_fc.bias": (4*C,), p+"mlp.c_proj.weight": (4*C, C), p+"mlp.c_proj.bias": (C,)})
        params = {k: v for k, v in t.items() if not k.startswith("murmur.")}
        assert set(params) == set(want), sorted(set(params) ^ set(want))
        for k, shape in want.items():
            assert params[k].shape == shape, (k, params[k].shape, shape)
            assert str(params[k].dtype) == "float32", (k, params[k].dtype)
        assert all(("murmur.residual." + k) in t for k in want)
        print("ok", len(params))
        """
        let r = Self.run(python, ["-c", script, file.path], env: env)
        #expect(r.status == 0, "python said: \(r.output)")
        #expect(r.output.contains("ok 16"))
    }

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
}
