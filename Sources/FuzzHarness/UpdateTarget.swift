import DeMo
import PeerRuntime
import Tensors
import TinyGPT

extension FuzzHarness {
    /// The layout the UPDATE harness decodes against: small, but it covers a chunked matrix, a
    /// 1-D tensor, a scalar, a 3-D tensor (reshaped to 2-D) and a prime length (chunk size 1).
    public static let updateLayout = ParameterLayout([
        ("m", [8, 12]), ("v", [10]), ("s", []), ("t", [3, 5, 2]), ("p", [7]),
    ])
    /// Its chunk plan: target chunk 4, top-k 3 (so `indexBits` is 4, 1, 0, 3 and 0).
    public static let updatePlan = DeMoPlan(layout: updateLayout, chunk: 4, topk: 3)

    /// Model of the dense AdamW body check: vocabulary 2, one layer of width 1 (30 parameters).
    public static let denseConfig = GPTConfig(vocabSize: 2, nLayer: 1, nHead: 1, nEmbd: 1, blockSize: 1)

    /// Fuzzes the UPDATE body decoders: `DeMoCodec.decode` against `updatePlan`, and the dense
    /// AdamW body check `GPTEngine.validate(body:)` of a `denseConfig` engine, on the same bytes.
    ///
    /// DeMo invariants on acceptance: the payload validates against the plan, the input has the
    /// plan's exact encoded size, re-encoding gives the input bytes (one encoding per payload) and
    /// decoding that gives the same payload bit for bit; values match their format (bf16 has a zero
    /// low half, int8 is a code in [-127, 127] times the chunk scale, sign is ± the scale).
    /// Dense invariants: exactly 4 bytes per parameter, all finite.
    @discardableResult
    public static func update(_ bytes: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        let dense = try denseBody(bytes)
        let sparse = try demoBody(bytes)
        return dense == .accepted ? dense : sparse
    }

    static func demoBody(_ bytes: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        let t = "update"
        let plan = updatePlan
        let payload: DeMoPayload
        do { payload = try DeMoCodec.decode(bytes, plan: plan) } catch { return .rejected(error.description) }
        do { try payload.validate(against: plan) } catch {
            throw FuzzFinding(t, "decoded payload does not fit the plan: \(error)")
        }
        try require(bytes.count == DeMoCodec.encodedSize(plan: plan, format: payload.format), t,
                    "accepted \(bytes.count) bytes, the plan's size is \(DeMoCodec.encodedSize(plan: plan, format: payload.format))")
        for (tp, tensor) in zip(plan.tensors, payload.tensors) { try checkValues(tensor, tp, payload.format) }
        let again: [UInt8]
        do { again = try DeMoCodec.encode(payload, plan: plan) } catch {
            throw FuzzFinding(t, "decoded payload cannot be encoded: \(error)")
        }
        try require(again == bytes, t, "re-encoding differs from the input at byte \(firstDifference(again, bytes))")
        do {
            let back = try DeMoCodec.decode(again, plan: plan)
            try require(sameBits(back, payload), t, "decode ∘ encode ∘ decode changed the payload")
        } catch let finding as FuzzFinding {
            throw finding
        } catch {
            throw FuzzFinding(t, "re-encoded payload rejected: \(error)")
        }
        return .accepted
    }

    static func checkValues(_ tensor: DeMoTensorPayload, _ tp: DeMoTensorPlan, _ format: DeMoValueFormat) throws(FuzzFinding) {
        let t = "update"
        for c in 0..<tp.chunkCount {
            for v in tensor.values[(c * tp.k)..<((c + 1) * tp.k)] {
                switch format {
                case .f32: break
                case .bf16: try require(v.bitPattern & 0xFFFF == 0, t, "bf16 value \(v) has low bits")
                case .int8:
                    let s = tensor.scales[c]
                    try require(abs(v) <= 127 * s, t, "int8 value \(v) exceeds 127 × scale \(s) in \(tp.name) chunk \(c)")
                case .sign:
                    try require(abs(v) == tensor.scales[c], t, "sign value \(v) is not ± scale \(tensor.scales[c])")
                case .twoBit:
                    let s = tensor.scales[c]
                    try require(abs(v) == 0.5 * s || abs(v) == 1.5 * s, t, "2bit value \(v) is not ±0.5 or ±1.5 × scale \(s)")
                }
            }
        }
    }

    static func sameBits(_ a: DeMoPayload, _ b: DeMoPayload) -> Bool {
        guard a.format == b.format, a.tensors.count == b.tensors.count else { return false }
        for (x, y) in zip(a.tensors, b.tensors) {
            guard x.chunkCount == y.chunkCount, x.k == y.k, x.indices == y.indices,
                  x.values.map(\.bitPattern) == y.values.map(\.bitPattern),
                  x.scales.map(\.bitPattern) == y.scales.map(\.bitPattern) else { return false }
        }
        return true
    }

    static func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
        zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
    }

    /// A `denseConfig` AdamW engine, built once (its model is a few dozen floats).
    nonisolated(unsafe) static let denseEngine: GPTEngine = {
        let corpus = try! Corpus(bytes: (0..<64).map { UInt8($0 % 3 & 1) }, source: "fuzz", contextLength: 1)
        let model = try! GPTModel(config: denseConfig)
        return try! GPTEngine(model: model, sampler: BatchSampler(corpus: corpus, seed: 1, batchSize: 1, seqLen: 1),
                              peer: 0, optimizer: .adamw(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0),
                              schedule: LRSchedule(peak: 1e-3, warmupSteps: 0, totalSteps: 1), clipNorm: nil)
    }()

    static func denseBody(_ bytes: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        let engine = denseEngine
        do { try engine.validate(body: bytes) } catch let error as EngineError {
            return .rejected(error.description)
        } catch {
            throw FuzzFinding("update", "dense validate threw an undocumented error: \(error)")
        }
        let n = engine.denseBytesPerContribution
        try require(bytes.count == n, "update", "dense body of \(bytes.count) bytes accepted, expected \(n)")
        for i in stride(from: 0, to: n, by: 4) {
            let bits = UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
            try require(Float(bitPattern: bits).isFinite, "update", "dense body with a non-finite value accepted")
        }
        return .accepted
    }
}
