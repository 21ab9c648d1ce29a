import Testing
@_spi(DeMoInternals) @testable import DeMo
import Tensors

/// The pieces of local steps over compressed sync: the error-feedback compression of a
/// pseudo-gradient (`prepare` with lr 1), the mean of decoded contributions and the outer step.
@Suite struct LocalStepsMathTests {
    func optimizer(_ transform: DeMoTransform, topk: Int, format: DeMoValueFormat = .f32, decay: Double = 0,
                   aggregate: DeMoAggregate = .mean) throws -> DeMoOptimizer {
        try DeMoOptimizer(layout: testLayout, config: DeMoConfig(decay: decay, topk: topk, chunk: 16, weightDecay: 0,
                                                                 valueFormat: format, aggregate: aggregate, transform: transform))
    }

    func mean(_ o: DeMoOptimizer, _ payloads: [DeMoPayload]) throws -> [Float] {
        var out = [Float](repeating: .nan, count: testLayout.totalCount)
        let cs = payloads.enumerated().map { DeMoContribution(peer: $0.offset, payload: $0.element) }
        try out.withUnsafeMutableBufferPointer { try o.meanDecoded(cs, into: $0) }
        return out
    }

    /// Without a transform and with every entry sent in f32, what is sent is the pseudo-gradient
    /// itself, bit for bit, and nothing is left in the error feedback.
    @Test func everythingSentWithoutTransformIsExact() throws {
        var o = try optimizer(.none, topk: 256)
        let delta = randomFloats(testLayout.totalCount, seed: 3, scale: 0.01)
        let p = try prepare(&o, delta, lr: 1)
        #expect(try mean(o, [p]) == delta)
        #expect(o.residual.allSatisfy { $0 == 0 })
    }

    /// Error feedback: after one compression, residual + what was sent is the input exactly (no
    /// transform, f32), the sent entries are the largest per chunk, and the next call sends what
    /// was left (decay 1 − ε keeps it; here decay 0.5 halves it first).
    @Test func errorFeedbackKeepsWhatWasNotSent() throws {
        var o = try optimizer(.none, topk: 2, decay: 0.5)
        let delta = randomFloats(testLayout.totalCount, seed: 4)
        let p = try prepare(&o, delta, lr: 1)
        let sent = try mean(o, [p])
        for i in delta.indices { #expect(o.residual[i] + sent[i] == delta[i]) }
        for (t, tp) in o.plan.tensors.enumerated() {
            for c in 0..<tp.chunkCount {
                let vals = p.tensors[t].values[(c * tp.k)..<((c + 1) * tp.k)]
                #expect(vals.allSatisfy { $0 != 0 })
            }
        }
        // The largest entry of tensor "a" (a 1-D tensor: one chunk of 12) was sent.
        let a = o.plan.tensors[0]
        let biggest = (a.offset..<(a.offset + 12)).max { abs(delta[$0]) < abs(delta[$1]) }!
        #expect(sent[biggest] == delta[biggest] && o.residual[biggest] == 0)
        let before = o.residual
        let zeros = [Float](repeating: 0, count: delta.count)
        let p2 = try prepare(&o, zeros, lr: 1)
        let sent2 = try mean(o, [p2])
        for i in delta.indices { #expect(o.residual[i] + sent2[i] == before[i] * 0.5) }
    }

    /// With the DCT and every coefficient sent, the decoded pseudo-gradient is the input up to
    /// float rounding of two orthonormal transforms.
    @Test func everythingSentWithDCTRoundTrips() throws {
        var o = try optimizer(.dct, topk: 256)
        let delta = randomFloats(testLayout.totalCount, seed: 5)
        let back = try mean(o, [try prepare(&o, delta, lr: 1)])
        for i in delta.indices { #expect(abs(back[i] - delta[i]) <= 1e-5) }
    }

    /// The mean divides by the contributor count (an entry one peer sent counts as zero for the
    /// other), in ascending peer order whatever the input order.
    @Test func meanOfTwoContributions() throws {
        var a = try optimizer(.none, topk: 256), b = try optimizer(.none, topk: 256)
        let x = randomFloats(testLayout.totalCount, seed: 6), y = randomFloats(testLayout.totalCount, seed: 7)
        let px = try prepare(&a, x, lr: 1), py = try prepare(&b, y, lr: 1)
        let m = try mean(a, [px, py])
        for i in x.indices { #expect(m[i] == (x[i] + y[i]) * 0.5) }
        var sparse = try optimizer(.none, topk: 1)
        let ps = try prepare(&sparse, x, lr: 1)
        let alone = try mean(sparse, [ps]), withZeros = try mean(sparse, [ps, try prepare(&sparse, [Float](repeating: 0, count: x.count), lr: 1)])
        // The second payload sends the residual's top entries; the first one's entries halve.
        #expect(alone.contains { $0 != 0 })
        #expect(withZeros != alone)
    }

    /// `θ ← θ − lr·u`: u = Δ without momentum; heavy ball m = μm + Δ, u = m; Nesterov u = Δ + μm.
    @Test(arguments: [(0.0, true), (0.5, false), (0.5, true)])
    func outerStepMath(momentum: Double, nesterov: Bool) throws {
        var o = try OuterStep(count: 3, config: OuterStepConfig(lr: 0.5, momentum: momentum, nesterov: nesterov))
        #expect(o.momentum.count == (momentum > 0 ? 3 : 0))
        var theta: [Float] = [1, 2, 3]
        let d1: [Float] = [0.5, -1, 2], d2: [Float] = [1, 1, -2]
        try theta.withUnsafeMutableBufferPointer { t in try d1.withUnsafeBufferPointer { try o.step(params: t, mean: $0) } }
        try theta.withUnsafeMutableBufferPointer { t in try d2.withUnsafeBufferPointer { try o.step(params: t, mean: $0) } }
        let mu = Float(momentum)
        var expected: [Float] = [1, 2, 3]
        for i in 0..<3 {
            let m1 = d1[i], m2 = mu * m1 + d2[i]
            let u1 = momentum == 0 ? d1[i] : (nesterov ? d1[i] + mu * m1 : m1)
            let u2 = momentum == 0 ? d2[i] : (nesterov ? d2[i] + mu * m2 : m2)
            expected[i] = expected[i] - 0.5 * u1
            expected[i] = expected[i] - 0.5 * u2
        }
        #expect(theta == expected)
    }

    @Test func outerStepRefusesBadSettingsAndBuffers() throws {
        #expect(throws: DeMoError.self) { _ = try OuterStep(count: 2, config: OuterStepConfig(lr: 0)) }
        #expect(throws: DeMoError.self) { _ = try OuterStep(count: 2, config: OuterStepConfig(lr: 1, momentum: 1)) }
        var o = try OuterStep(count: 2, config: OuterStepConfig(lr: 1, momentum: 0.9))
        #expect(throws: DeMoError.self) { try o.setMomentum([1]) }
        #expect(throws: DeMoError.self) { try o.setMomentum([1, .nan]) }
        var p: [Float] = [0, 0]
        #expect(throws: DeMoError.self) {
            try p.withUnsafeMutableBufferPointer { t in try [Float(1)].withUnsafeBufferPointer { try o.step(params: t, mean: $0) } }
        }
        let d = try optimizer(.none, topk: 4)
        var short = [Float](repeating: 0, count: 3)
        #expect(throws: DeMoError.self) { try short.withUnsafeMutableBufferPointer { try d.meanDecoded([], into: $0) } }
    }

    /// transform: none keeps the plan and codec: a payload encodes to the same size as with the DCT.
    @Test func transformNoneKeepsTheWireFormat() throws {
        let a = try optimizer(.none, topk: 4, format: .twoBit), b = try optimizer(.dct, topk: 4, format: .twoBit)
        #expect(a.plan == b.plan)
        var o = a
        let p = try prepare(&o, randomFloats(testLayout.totalCount, seed: 8), lr: 1)
        let bytes = try DeMoCodec.encode(p, plan: a.plan)
        #expect(bytes.count == DeMoCodec.encodedSize(plan: a.plan, format: .twoBit))
        #expect(try DeMoCodec.decode(bytes, plan: a.plan) == p)
    }
}

/// The `2bit` value format: levels, bytes, and every way a hostile payload is refused.
@Suite struct TwoBitFormatTests {
    @Test func levelsOfAChunk() {
        var v: [Float] = [2, -0.1, 0.5, -3, 0]
        let s = v.withUnsafeMutableBufferPointer { DeMoValueFormat.twoBit.quantize($0.baseAddress!, count: 5) }
        #expect(s == Float(5.6 / 5))
        #expect(v == [1.5 * s, -0.5 * s, 0.5 * s, -1.5 * s, 0.5 * s])
        var zeros: [Float] = [0, 0, -0.0]
        #expect(zeros.withUnsafeMutableBufferPointer { DeMoValueFormat.twoBit.quantize($0.baseAddress!, count: 3) } == 0)
        #expect(zeros.allSatisfy { $0 == 0 && $0.sign == .plus })
        // A subnormal mean sends zeros (the decoder refuses subnormal scales).
        var tiny: [Float] = [.leastNonzeroMagnitude, 0]
        #expect(tiny.withUnsafeMutableBufferPointer { DeMoValueFormat.twoBit.quantize($0.baseAddress!, count: 2) } == 0)
        #expect(DeMoValueFormat(name: "2bit") == .twoBit && DeMoValueFormat.twoBit.description == "2bit")
        #expect(DeMoValueFormat.twoBit.valueBytes(k: 64) == 4 + 16)
        #expect(DeMoValueFormat.twoBit.valueBytes(k: 5) == 4 + 2)
    }

    /// One 1-D tensor of 6 → one chunk of 6, k = 3, 3-bit indices (2 bytes at 24), the scale at
    /// 26…29, one code byte at 30 (6 bits used).
    func sample() throws -> (bytes: [UInt8], plan: DeMoPlan) {
        let layout = ParameterLayout([(name: "x", shape: [6])])
        var o = try DeMoOptimizer(layout: layout, config: DeMoConfig(decay: 0, topk: 3, chunk: 16, valueFormat: .twoBit, transform: .none))
        let p = try [Float(1), -2, 0.1, 3, -0.2, 0.5].withUnsafeBufferPointer { try o.prepare(gradients: $0, lr: 1) }
        let bytes = try DeMoCodec.encode(p, plan: o.plan)
        #expect(bytes.count == 31)
        return (bytes, o.plan)
    }

    @Test func hostileScalesCodesAndPadding() throws {
        let (good, plan) = try sample()
        #expect(decodeIsSafe(good, plan))
        func patched(_ at: Int, _ b: [UInt8]) -> [UInt8] { var x = good; x.replaceSubrange(at..<(at + b.count), with: b); return x }
        func le(_ f: Float) -> [UInt8] { (0..<4).map { UInt8((f.bitPattern >> (8 * $0)) & 0xFF) } }
        for bad: Float in [-1, .nan, .infinity, .leastNonzeroMagnitude, -0.0] {
            #expect(throws: DeMoCodecError.invalidPayload(.badScale(tensor: "x", chunk: 0)), "scale \(bad)") {
                _ = try DeMoCodec.decode(patched(26, le(bad)), plan: plan)
            }
        }
        // 1.5 × a huge scale overflows: refused as a non-finite value, never applied.
        #expect(throws: DeMoCodecError.invalidPayload(.nonFiniteValue(tensor: "x", chunk: 0))) {
            _ = try DeMoCodec.decode(patched(26, le(.greatestFiniteMagnitude)), plan: plan)
        }
        // Under a zero scale only code 2 is canonical (0b10_10_10 = 0x2A).
        #expect(decodeIsSafe(patched(26, le(0) + [0x2A]), plan))
        #expect(throws: DeMoCodecError.self) { _ = try DeMoCodec.decode(patched(26, le(0) + [0x28]), plan: plan) }
        // The two padding bits of the code byte must be zero.
        #expect(throws: DeMoCodecError.nonZeroPadding(offset: 30)) { _ = try DeMoCodec.decode(patched(30, [good[30] | 0xC0]), plan: plan) }
        for n in 0..<good.count { #expect(!decodeIsSafe(Array(good[0..<n]), plan)) }
        #expect(throws: DeMoCodecError.trailingBytes(1)) { _ = try DeMoCodec.decode(good + [0], plan: plan) }
    }
}
