import Tensors
import Testing
@testable import TinyGPT

/// Whole-model behaviour: gradients against finite differences, worker-count invariance,
/// deterministic init, validation errors, parameter I/O and sampling.
@Suite struct ModelTests {
    init() { useSingleThreadedBLAS() }

    /// A small batch of byte tokens and next-token targets.
    static func batch(B: Int, T: Int, seed: UInt64) -> (inputs: [Int32], targets: [Int32]) {
        var rng = SeededRNG(seed: seed)
        let stream = (0...(B * T)).map { _ in Int32(rng.next() % 256) }
        return (Array(stream[0..<(B * T)]), Array(stream[1...(B * T)]))
    }

    static func loss(_ model: GPTModel, _ x: [Int32], _ y: [Int32], B: Int, T: Int) -> Float {
        x.withUnsafeBufferPointer { i in y.withUnsafeBufferPointer { t in model.forward(inputs: i, targets: t, batch: B, seqLen: T) } }
    }

    /// For every tensor, the directional derivative along its own (analytic) gradient, which must
    /// equal ‖g‖, and along a random direction, which must equal g·d, both by central differences
    /// of the Float model's loss. A wrong gradient breaks at least one of the two.
    @Test func wholeModelMatchesFiniteDifferencesOnNano() throws {
        let B = 2, T = 8
        let model = try GPTModel(config: .nano, maxBatchSize: B, maxSeqLen: T, seed: 5)
        // Larger-than-init weights make every path matter (init is nearly linear).
        var rng = SeededRNG(seed: 99)
        for i in model.parameters.indices { model.parameters[i] += rng.nextNormal() * 0.1 }
        let (x, y) = Self.batch(B: B, T: T, seed: 3)
        _ = Self.loss(model, x, y, B: B, T: T)
        model.backward()
        let grads = Array(model.gradients)
        let h: Float = 1e-2
        for slot in model.layout.slots {
            let g = Array(grads[slot.range])
            let gNorm = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let random = randomArray(slot.count, &rng)
            let rNorm = random.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            for (label, dir) in [("gradient", g.map { Double($0) / max(gNorm, 1e-30) }), ("random", random.map { Double($0) / rNorm })] {
                let saved = Array(model.parameters[slot.range])
                func lossAt(_ s: Float) -> Double {
                    for (k, i) in slot.range.enumerated() { model.parameters[i] = saved[k] + s * h * Float(dir[k]) }
                    return Double(Self.loss(model, x, y, B: B, T: T))
                }
                let numeric = (lossAt(1) - lossAt(-1)) / (2 * Double(h))
                for (k, i) in slot.range.enumerated() { model.parameters[i] = saved[k] }
                let analytic = zip(g, dir).reduce(0.0) { $0 + Double($1.0) * $1.1 }
                // Loss rounding (~1e-7 × 5.5 / 2h) bounds what can be resolved.
                let tol = 2e-2 * abs(analytic) + 1e-4
                #expect(abs(numeric - analytic) <= tol, "\(slot.name) along \(label): numeric \(numeric) analytic \(analytic)")
            }
        }
    }

    @Test(arguments: [2, 3])
    func workersGiveTheSameResultAsOne(threads: Int) throws {
        let B = 5, T = 16
        let one = try GPTModel(config: .tiny, maxBatchSize: B, maxSeqLen: T, seed: 8, threads: 1)
        let many = try GPTModel(config: .tiny, maxBatchSize: B, maxSeqLen: T, seed: 8, threads: threads)
        let (x, y) = Self.batch(B: B, T: T, seed: 4)
        let l1 = Self.loss(one, x, y, B: B, T: T), l2 = Self.loss(many, x, y, B: B, T: T)
        #expect(abs(l1 - l2) <= 1e-6 * abs(l1))
        #expect(maxAbsDiff(Array(one.logits), Array(many.logits)) <= 1e-5)
        one.backward()
        many.backward()
        #expect(relError(Array(many.gradients), Array(one.gradients)) <= 1e-6)
    }

    @Test func smallerBatchThanCapacityMatchesExactSizedModel() throws {
        let big = try GPTModel(config: .tiny, maxBatchSize: 4, maxSeqLen: 32, seed: 2)
        let exact = try GPTModel(config: .tiny, maxBatchSize: 2, maxSeqLen: 10, seed: 2)
        let (x, y) = Self.batch(B: 2, T: 10, seed: 6)
        let lb = Self.loss(big, x, y, B: 2, T: 10), le = Self.loss(exact, x, y, B: 2, T: 10)
        // Tolerances, not equality: another test may change the process-wide BLAS thread count,
        // and with it the GEMM summation order.
        #expect(abs(lb - le) <= 1e-6 * abs(le))
        big.backward()
        exact.backward()
        #expect(relError(Array(big.gradients), Array(exact.gradients)) <= 1e-6)
        // A second backward overwrites rather than accumulates.
        exact.backward()
        #expect(relError(Array(big.gradients), Array(exact.gradients)) <= 1e-6)
    }

    @Test func initIsDeterministicPerSeedAndGPT2Shaped() throws {
        let a = try GPTModel(config: .small, seed: 42), b = try GPTModel(config: .small, seed: 42)
        let c = try GPTModel(config: .small, seed: 43)
        #expect(Array(a.parameters) == Array(b.parameters))
        #expect(Array(a.parameters) != Array(c.parameters))
        func values(_ name: String) -> [Float] { Array(a.parameters[a.layout.slot(named: name)!.range]) }
        func std(_ v: [Float]) -> Double {
            let m = v.reduce(0.0) { $0 + Double($1) } / Double(v.count)
            return (v.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) } / Double(v.count)).squareRoot()
        }
        #expect(abs(std(values("transformer.wte.weight")) - 0.02) < 0.001)
        #expect(abs(std(values("transformer.h.0.mlp.c_fc.weight")) - 0.02) < 0.001)
        let projStd = 0.02 / (2.0 * 4).squareRoot()
        #expect(abs(std(values("transformer.h.3.attn.c_proj.weight")) - projStd) < 0.0005)
        #expect(values("transformer.h.1.ln_2.weight").allSatisfy { $0 == 1 })
        #expect(values("transformer.h.2.attn.c_attn.bias").allSatisfy { $0 == 0 })
        #expect(a.layout.slots.first?.name == "transformer.wte.weight")
        #expect(a.layout.slots[1].name == "transformer.wpe.weight")
        #expect(a.layout.slots.last?.name == "transformer.ln_f.bias")
        #expect(a.layout.slots.count == 2 + 12 * 4 + 2)
    }

    @Test func invalidConfigsAndCapacitiesThrowTypedErrors() {
        #expect(throws: GPTConfigError.embeddingNotDivisibleByHeads(nEmbd: 30, nHead: 4)) {
            try GPTConfig(nLayer: 1, nHead: 4, nEmbd: 30, blockSize: 8).validate()
        }
        #expect(throws: GPTConfigError.nonPositive(field: "nLayer", value: 0)) {
            _ = try GPTModel(config: GPTConfig(nLayer: 0, nHead: 1, nEmbd: 8, blockSize: 8))
        }
        #expect(throws: GPTConfigError.nonPositive(field: "vocabSize", value: -1)) {
            try GPTConfig(vocabSize: -1, nLayer: 1, nHead: 1, nEmbd: 8, blockSize: 8).validate()
        }
        #expect(throws: GPTModelError.invalidCapacity(batch: 1, seqLen: 64, blockSize: 32)) {
            _ = try GPTModel(config: .nano, maxBatchSize: 1, maxSeqLen: 64)
        }
        #expect(throws: GPTConfigError.unknownPreset("huge")) { _ = try GPTConfig.preset(named: "huge") }
        #expect((try? GPTConfig.preset(named: "Small")) == .small)
        #expect((try? GPTConfig(metadata: GPTConfig.base.metadata)) == .base)
        #expect(throws: GPTConfigError.badMetadata(key: "n_head", value: "x")) {
            var m = GPTConfig.tiny.metadata
            m["n_head"] = "x"
            _ = try GPTConfig(metadata: m)
        }
        #expect("\(GPTConfigError.embeddingNotDivisibleByHeads(nEmbd: 30, nHead: 4))".contains("multiple"))
    }

    @Test func parametersRoundTripByNameAndMismatchesThrow() throws {
        let a = try GPTModel(config: .nano, seed: 1), b = try GPTModel(config: .nano, seed: 2)
        var exported = a.exportParameters()
        try b.loadParameters(from: exported)
        #expect(Array(a.parameters) == Array(b.parameters))
        exported["transformer.ln_f.bias"] = [1, 2, 3]
        #expect(throws: GPTModelError.wrongSize(name: "transformer.ln_f.bias", expected: 32, actual: 3)) {
            try b.loadParameters(from: exported)
        }
        exported["transformer.ln_f.bias"] = nil
        #expect(throws: GPTModelError.missingParameter("transformer.ln_f.bias")) { try b.loadParameters(from: exported) }
        #expect(Array(a.parameters) == Array(b.parameters)) // failed loads change nothing
    }

    @Test func samplingIsSeededAndGreedyIsArgmax() throws {
        let model = try GPTModel(config: .nano, seed: 3)
        var r1 = SeededRNG(seed: 10), r2 = SeededRNG(seed: 10)
        let s1 = model.generate(prompt: Array("hello".utf8), count: 40, temperature: 1, topK: 20, rng: &r1)
        let s2 = model.generate(prompt: Array("hello".utf8), count: 40, temperature: 1, topK: 20, rng: &r2)
        #expect(s1.count == 40 && s1 == s2)
        var r3 = SeededRNG(seed: 1), r4 = SeededRNG(seed: 2)
        let greedy = model.generate(prompt: [], count: 5, temperature: 0, rng: &r3)
        let top1 = model.generate(prompt: [], count: 5, temperature: 0.7, topK: 1, rng: &r4)
        #expect(greedy == top1)
        // Long generations slide the context window past blockSize.
        let long = model.generate(prompt: Array(repeating: 65, count: 40), count: 3, rng: &r1)
        #expect(long.count == 3)
    }

    @Test func clipGradNormScalesOnlyAboveTheLimit() {
        var g: [Float] = [3, 4]
        let n = g.withUnsafeMutableBufferPointer { clipGradNorm($0, maxNorm: 1) }
        #expect(n == 5)
        #expect(abs(g[0] - 0.6) < 1e-6 && abs(g[1] - 0.8) < 1e-6)
        var small: [Float] = [0.3, 0.4]
        let m = small.withUnsafeMutableBufferPointer { clipGradNorm($0, maxNorm: 1) }
        #expect(abs(m - 0.5) < 1e-7 && small == [0.3, 0.4])
        var bad: [Float] = [.nan, 1]
        let b = bad.withUnsafeMutableBufferPointer { clipGradNorm($0, maxNorm: 1) }
        #expect(b.isNaN && bad[1] == 1)
    }
}
