import Checkpointing
import DeMo
import Foundation
import Mesh
import PeerRuntime
import Tensors
import TinyGPT

/// Valid starting inputs for each fuzz target, made by the project's own encoders (and, for the
/// topology target, read from `topologies/*.yaml`). `scripts/fuzz.sh` writes them into an empty
/// corpus; the replay tests run them too.
public enum FuzzSeeds {
    /// Seed inputs of `target` as (file name, bytes). `root` is the package root (for `topologies/`).
    public static func seeds(for target: String, root: String) -> [(name: String, bytes: [UInt8])] {
        switch target {
        case "header": return header()
        case "update": return update()
        case "topology": return topology(root: root)
        case "checkpoint": return checkpoint()
        case "peer", "catchup": return handler(target)
        default: preconditionFailure("unknown fuzz target \(target)")
        }
    }

    /// One envelope per message kind, with bodies of 0–300 bytes, both flags and several origins.
    static func header() -> [(name: String, bytes: [UInt8])] {
        var out: [(String, [UInt8])] = []
        for (i, kind) in MessageKind.allCases.enumerated() {
            let body = (0..<(i * 37 % 300)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
            let flags: MessageFlags = i % 3 == 0 ? [] : (i % 3 == 1 ? .relayed : [.relayed, .lastChunk])
            let env = Envelope.make(kind: kind, flags: flags, runID: FuzzHarness.headerRunID,
                                    origin: PeerIndex(i % FuzzHarness.headerPeerCount), incarnation: UInt32(i),
                                    step: UInt64(1000 * i), sequence: UInt64(i * i), body: body)
            let f = env.frames
            out.append(("seed-\(kind)", FuzzHarness.headerInput(topic: f[0], header: f[1], body: f[2])))
        }
        // A presence subscription frame in the topic slot (rejected as a topic, parsed as a subscription).
        let env = Envelope.make(kind: .heartbeat, runID: FuzzHarness.headerRunID, origin: 3, incarnation: 1,
                                step: 7, sequence: 9, body: [1, 2, 3])
        out.append(("seed-presence", FuzzHarness.headerInput(topic: [1] + Topic.presence(of: 3),
                                                              header: env.frames[1], body: env.body)))
        return out
    }

    /// Two DeMo payloads per value format (made by `DeMoOptimizer.prepare`), and a dense AdamW body.
    static func update() -> [(name: String, bytes: [UInt8])] {
        var out: [(String, [UInt8])] = []
        let layout = FuzzHarness.updateLayout
        for format in DeMoValueFormat.allCases {
            var opt = try! DeMoOptimizer(layout: layout, config: DeMoConfig(topk: 3, chunk: 4, valueFormat: format))
            precondition(opt.plan == FuzzHarness.updatePlan)
            var rng = SeededRNG(seed: UInt64(format.rawValue) + 11)
            for round in 0..<2 {
                let g = (0..<layout.totalCount).map { _ in rng.nextNormal() }
                let payload = try! g.withUnsafeBufferPointer { try opt.prepare(gradients: $0, lr: 0.01) }
                out.append(("seed-\(format)-\(round)", try! DeMoCodec.encode(payload, plan: opt.plan)))
            }
        }
        let (body, _) = try! FuzzHarness.denseEngine.contribute(step: 0)
        out.append(("seed-dense", body))
        return out
    }

    /// Hostile-peer scripts (`FuzzHarness.peerHandler` / `catchUpHandler` read any bytes): a quiet
    /// run, the one-frame kill (a catch-up request for step 2^63 + 5 at every peer), and
    /// pseudo-random scripts of several lengths.
    static func handler(_ target: String) -> [(name: String, bytes: [UInt8])] {
        var out: [(String, [UInt8])] = [("seed-quiet", [60])]
        // op 5 (request; in catchup: start the late peer first), origin 3, incarnation 1, step
        // selector 9 (2^63 + 5), body mode 1 (snapshot wanted), flags 1, sequence 3, target peer.
        var kill: [UInt8] = [40]
        for to in 0..<3 { kill += [5, 200, 1, 9, 1, 1, 1, 3, UInt8(to), 6 << 3 | 6] }
        for to in 0..<3 { kill += [5, 200, 1, 9, 1, 1, 1, 3, UInt8(to)] }
        out.append(("seed-request-2e63", kill))
        var rng = SplitMix64(seed: target == "peer" ? 16 : 61)
        for (k, n) in [48, 96, 160, 256, 400, 640].enumerated() {
            out.append(("seed-random-\(k)", (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }))
        }
        return out
    }

    /// The project's topology files.
    static func topology(root: String) -> [(name: String, bytes: [UInt8])] {
        let dir = URL(fileURLWithPath: root).appendingPathComponent("topologies")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted().compactMap { name in
            guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent(name).path) else { return nil }
            return ("seed-" + name.replacingOccurrences(of: ".yaml", with: ""), [UInt8](data))
        }
    }

    /// Checkpoints of the tiny `denseConfig` model (parameters only, with a DeMo residual, with AdamW
    /// moments) and a plain safetensors file using several dtypes.
    static func checkpoint() -> [(name: String, bytes: [UInt8])] {
        let config = FuzzHarness.denseConfig
        let n = GPTParameters.layout(for: config).totalCount
        var rng = SeededRNG(seed: 5)
        let params = (0..<n).map { _ in rng.nextNormal() }
        let residual = (0..<n).map { _ in rng.nextNormal() * 0.01 }
        let variants: [(String, TrainingCheckpoint)] = [
            ("params", TrainingCheckpoint(config: config, step: 3, incarnation: 1, runID: 42, parameters: params)),
            ("demo", TrainingCheckpoint(config: config, step: 50, runID: 7, parameters: params, residual: residual,
                                        extra: ["peer_index": "1"])),
            ("adamw", TrainingCheckpoint(config: config, step: 9, parameters: params, adamM: residual,
                                         adamV: residual.map { $0 * $0 }, adamT: 9)),
        ]
        var out: [(String, [UInt8])] = variants.map { ("seed-\($0.0)", [UInt8](try! $0.1.encoded())) }
        let plain = SafeTensors(tensors: [
            SafeTensor(name: "a", shape: [2, 2], floats: [1, 2, 3, 4]),
            SafeTensor(name: "b", shape: [3], int32s: [-1, 0, 1]),
            SafeTensor(name: "c", dtype: .bf16, shape: [2], bytes: [0x80, 0x3F, 0x00, 0xC0]),
            SafeTensor(name: "d", dtype: .f16, shape: [], bytes: [0x00, 0x3C]),
            SafeTensor(name: "e", dtype: .u8, shape: [0, 4], bytes: []),
        ], metadata: ["note": "fuzz seed"])
        out.append(("seed-plain", [UInt8](try! plain.encoded())))
        return out
    }
}
