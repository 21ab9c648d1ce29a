import Checkpointing
import Foundation
import Tensors
import TinyGPT

/// Errors loading a training checkpoint.
public enum TrainingCheckpointError: Error, CustomStringConvertible {
    case notAMurmurCheckpoint(String)
    case checksumMismatch(expected: String, actual: String)
    case missingTensor(String)
    case shapeMismatch(name: String, expected: [Int], got: [Int])
    case badMetadata(String)
    /// The config in the metadata needs more parameters than the file holds values (or is absurdly large).
    case configExceedsData(parameters: Int, values: Int)

    public var description: String {
        switch self {
        case .notAMurmurCheckpoint(let why): return "not a Murmur checkpoint: \(why)"
        case .checksumMismatch(let e, let a): return "data checksum mismatch (header says \(e.prefix(16))…, data hashes to \(a.prefix(16))…): the file is corrupt"
        case .missingTensor(let n): return "checkpoint lacks tensor \(n)"
        case .shapeMismatch(let n, let e, let g): return "tensor \(n) has shape \(g), the model needs \(e)"
        case .badMetadata(let k): return "checkpoint metadata field '\(k)' is missing or malformed"
        case .configExceedsData(let p, let v):
            return "the checkpoint's model config needs \(p == Int.max ? "too many" : String(p)) parameters, the file holds \(v) values: the file is corrupt"
        }
    }
}

/// Everything needed to resume a peer or a training run (DESIGN §7), stored as safetensors:
/// parameters under their Hugging Face GPT-2 names (so the file loads in PyTorch), the DeMo residual
/// and AdamW moments under `murmur.*` names, and the rest in the header's metadata, with a SHA-256
/// over every tensor's bytes (in name order) so a flipped bit anywhere in the data is caught.
public struct TrainingCheckpoint: Sendable {
    public static let formatTag = "murmur-checkpoint-1"

    public var config: GPTConfig
    /// Steps completed (the next step to run).
    public var step: Int
    public var incarnation: UInt32
    public var runID: UInt64
    public var parameters: [Float]
    public var residual: [Float]?
    public var adamM: [Float]?
    public var adamV: [Float]?
    public var adamT: Int
    /// Local steps' outer momentum (replicated; nil without outer momentum).
    public var outerMomentum: [Float]?
    /// Free-form extra metadata (optimizer settings, corpus checksum, peer id…).
    public var extra: [String: String]

    public init(config: GPTConfig, step: Int, incarnation: UInt32 = 0, runID: UInt64 = 0, parameters: [Float],
                residual: [Float]? = nil, adamM: [Float]? = nil, adamV: [Float]? = nil, adamT: Int = 0,
                extra: [String: String] = [:]) {
        self.config = config
        self.step = step
        self.incarnation = incarnation
        self.runID = runID
        self.parameters = parameters
        self.residual = residual
        self.adamM = adamM
        self.adamV = adamV
        self.adamT = adamT
        self.extra = extra
    }

    public func encoded() throws -> Data {
        let layout = GPTParameters.layout(for: config)
        var tensors: [SafeTensor] = []
        func add(_ prefix: String, _ flat: [Float]) {
            for s in layout.slots {
                tensors.append(SafeTensor(name: prefix + s.name, shape: s.shape, floats: flat[s.range]))
            }
        }
        add("", parameters)
        if let residual { add("murmur.residual.", residual) }
        if let adamM { add("murmur.adam_m.", adamM) }
        if let adamV { add("murmur.adam_v.", adamV) }
        if let outerMomentum { add("murmur.outer_m.", outerMomentum) }
        var meta = extra
        meta["format"] = Self.formatTag
        meta["config"] = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        meta["step"] = String(step)
        meta["incarnation"] = String(incarnation)
        meta["run_id"] = String(runID)
        meta["adam_t"] = String(adamT)
        meta["data_sha256"] = Self.dataDigest(tensors)
        return try SafeTensors(tensors: tensors, metadata: meta).encoded()
    }

    /// Parses and verifies (format tag, checksum, every shape against the config).
    public static func decode(_ data: Data) throws -> TrainingCheckpoint {
        let st = try SafeTensors(data: data)
        guard st.metadata["format"] == formatTag else {
            throw TrainingCheckpointError.notAMurmurCheckpoint("metadata 'format' is \(st.metadata["format"] ?? "absent")")
        }
        let want = st.metadata["data_sha256"] ?? ""
        let got = dataDigest(Array(st.tensors.values))
        guard want == got else { throw TrainingCheckpointError.checksumMismatch(expected: want, actual: got) }
        guard let cj = st.metadata["config"], let config = try? JSONDecoder().decode(GPTConfig.self, from: Data(cj.utf8)) else {
            throw TrainingCheckpointError.badMetadata("config")
        }
        try config.validate()
        func int(_ k: String) throws -> Int {
            guard let v = st.metadata[k].flatMap({ Int($0) }), v >= 0 else { throw TrainingCheckpointError.badMetadata(k) }
            return v
        }
        // Bound the config before computing its layout: hostile sizes would overflow the layout
        // arithmetic (a trap) or allocate far more than the file can hold (found with the checkpoint fuzz harness).
        let values = st.tensors.values.reduce(0) { $0 + $1.elementCount }
        guard config.vocabSize <= 1 << 20, config.nLayer <= 1 << 12, config.nEmbd <= 1 << 16, config.blockSize <= 1 << 20 else {
            throw TrainingCheckpointError.configExceedsData(parameters: Int.max, values: values)
        }
        let layout = GPTParameters.layout(for: config)
        guard layout.totalCount <= values else {
            throw TrainingCheckpointError.configExceedsData(parameters: layout.totalCount, values: values)
        }
        func flat(_ prefix: String, required: Bool) throws -> [Float]? {
            var out = [Float](repeating: 0, count: layout.totalCount)
            for s in layout.slots {
                guard let t = st.tensors[prefix + s.name] else {
                    if required || s.offset > 0 { throw TrainingCheckpointError.missingTensor(prefix + s.name) }
                    return nil
                }
                guard t.shape == s.shape else { throw TrainingCheckpointError.shapeMismatch(name: t.name, expected: s.shape, got: t.shape) }
                let v = try t.floats()
                out.replaceSubrange(s.range, with: v)
            }
            return out
        }
        var c = TrainingCheckpoint(
            config: config, step: try int("step"), incarnation: UInt32(clamping: try int("incarnation")),
            runID: UInt64(st.metadata["run_id"] ?? "0") ?? 0,
            parameters: try flat("", required: true)!, residual: try flat("murmur.residual.", required: false),
            adamM: try flat("murmur.adam_m.", required: false), adamV: try flat("murmur.adam_v.", required: false),
            adamT: try int("adam_t"),
            extra: st.metadata.filter { !["format", "config", "step", "incarnation", "run_id", "adam_t", "data_sha256"].contains($0.key) })
        c.outerMomentum = try flat("murmur.outer_m.", required: false)
        return c
    }

    /// SHA-256 (hex) over every tensor's name and bytes in name order: the `data_sha256` a
    /// checkpoint carries in its metadata.
    public static func dataDigest(_ tensors: [SafeTensor]) -> String {
        var h = SHA256()
        for t in tensors.sorted(by: { $0.name < $1.name }) {
            h.update(Array(t.name.utf8))
            h.update(t.bytes)
        }
        return SHA256Hex.hex(h.finalize())
    }
}
