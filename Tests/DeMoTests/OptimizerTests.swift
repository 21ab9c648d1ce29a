import Testing
@_spi(DeMoInternals) @testable import DeMo
import Tensors

/// A layout with 1-D, 2-D, prime, tiny and 3-D tensors.
let testLayout = ParameterLayout([
    (name: "a", shape: [24]), (name: "w", shape: [32, 20]), (name: "prime", shape: [67]),
    (name: "thin", shape: [3, 40]), (name: "col", shape: [3, 1]), (name: "conv", shape: [4, 6, 10]),
])

func makeOptimizer(_ format: DeMoValueFormat = .f32, wd: Double = 0) throws -> DeMoOptimizer {
    try DeMoOptimizer(layout: testLayout, config: DeMoConfig(decay: 0.9, topk: 4, chunk: 16, weightDecay: wd, valueFormat: format))
}

func prepare(_ o: inout DeMoOptimizer, _ g: [Float], lr: Double = 0.01) throws -> DeMoPayload {
    try g.withUnsafeBufferPointer { try o.prepare(gradients: $0, lr: lr) }
}

@Suite struct OptimizerTests {
    @Test func applyIsDeterministicAcrossInputOrder() throws {
        var peers = try (0..<4).map { _ in try makeOptimizer(wd: 0.1) }
        let initial = randomFloats(testLayout.totalCount, seed: 1)
        var p1 = initial, p2 = initial
        for step in 0..<3 {
            var cons: [DeMoContribution] = []
            for i in 0..<4 {
                let g = randomFloats(testLayout.totalCount, seed: UInt64(100 * step + i))
                cons.append(DeMoContribution(peer: 10 + i, payload: try prepare(&peers[i], g)))
            }
            try p1.withUnsafeMutableBufferPointer { try peers[0].apply(cons, lr: 0.01, to: $0) }
            try p2.withUnsafeMutableBufferPointer { try peers[3].apply(cons.reversed(), lr: 0.01, to: $0) }
            #expect(p1.map(\.bitPattern) == p2.map(\.bitPattern))
        }
        #expect(p1 != initial)
        // Every element moved by ±lr or 0 after weight decay: the update is a sign step.
        #expect(p1.contains { abs($0) > 0 })
    }

    /// Splitting tensors over threads (by chunk bands) does not change a single bit.
    @Test func threadedApplyMatchesSerial() throws {
        var peers = try (0..<3).map { _ in try makeOptimizer(wd: 0.05) }
        let cons = try (0..<3).map { i in
            DeMoContribution(peer: i, payload: try prepare(&peers[i], randomFloats(testLayout.totalCount, seed: 40 + UInt64(i))))
        }
        var serial = randomFloats(testLayout.totalCount, seed: 44), threaded = serial
        try serial.withUnsafeMutableBufferPointer { try peers[0].apply(cons, lr: 0.02, to: $0, threads: 1) }
        try threaded.withUnsafeMutableBufferPointer { try peers[1].apply(cons, lr: 0.02, to: $0, threads: 3) }
        #expect(serial.map(\.bitPattern) == threaded.map(\.bitPattern))
    }

    @Test func singlePeerUpdateIsSignOfLocalEstimate() throws {
        var o = try makeOptimizer()
        let g = randomFloats(testLayout.totalCount, seed: 5)
        let (payload, traces) = try g.withUnsafeBufferPointer { try o.prepareTraced(gradients: $0, lr: 0.5, trace: true) }
        var p = [Float](repeating: 0, count: testLayout.totalCount)
        try p.withUnsafeMutableBufferPointer { try o.apply([DeMoContribution(peer: 0, payload: payload)], lr: 0.5, to: $0) }
        for (t, tp) in o.plan.tensors.enumerated() {
            for i in 0..<tp.count {
                let e = traces[t].localEstimate[i]
                // W = 1: the aggregate is bit-identical to the local estimate.
                let want: Float = e > 0 ? -0.5 : (e < 0 ? 0.5 : 0)
                #expect(p[tp.offset + i] == want, "\(tp.name)[\(i)]")
            }
        }
        // Chunk-1 tensor ("prime") sends everything: its residual is exactly zero.
        let prime = o.plan.tensors[2]
        #expect(o.residual[prime.range].allSatisfy { $0 == 0 })
    }

    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func nonFiniteGradientRejectedWithoutMutation(bad: Float) throws {
        var o = try makeOptimizer()
        _ = try prepare(&o, randomFloats(testLayout.totalCount, seed: 2))
        let before = o.residual
        var g = randomFloats(testLayout.totalCount, seed: 3)
        let slot = testLayout.slot(named: "thin")!
        g[slot.offset + 7] = bad
        #expect(throws: DeMoError.nonFiniteGradient(tensor: "thin", index: 7)) { _ = try prepare(&o, g) }
        #expect(o.residual == before)
    }

    @Test func missingGradientNamesTensor() throws {
        var o = try makeOptimizer()
        let conv = testLayout.slot(named: "conv")!
        let g = randomFloats(conv.offset + 5, seed: 4)
        #expect(throws: DeMoError.missingGradient(tensor: "conv", needed: testLayout.totalCount, available: conv.offset + 5)) {
            _ = try prepare(&o, g)
        }
        #expect(o.residual.allSatisfy { $0 == 0 })
        #expect(throws: DeMoError.self) { _ = try prepare(&o, g + [Float](repeating: 0, count: 1000)) }
    }

    @Test func invalidContributionsRejectedWithoutMutation() throws {
        var o = try makeOptimizer()
        let good = try prepare(&o, randomFloats(testLayout.totalCount, seed: 8))
        var params = randomFloats(testLayout.totalCount, seed: 9)
        let before = params
        var outOfRange = good; outOfRange.tensors[1].indices[0] = 1000
        var unsorted = good; unsorted.tensors[1].indices.swapAt(0, 1)
        var nan = good; nan.tensors[5].values[3] = .nan
        var shortT = good; shortT.tensors.removeLast()
        var badK = good; badK.tensors[0].k = 5
        for bad in [outOfRange, unsorted, nan, shortT, badK] {
            let cons = [DeMoContribution(peer: 0, payload: good), DeMoContribution(peer: 1, payload: bad)]
            #expect(throws: DeMoError.self) { try params.withUnsafeMutableBufferPointer { try o.apply(cons, lr: 0.1, to: $0) } }
        }
        let dup = [DeMoContribution(peer: 2, payload: good), DeMoContribution(peer: 2, payload: good)]
        #expect(throws: DeMoError.duplicatePeer(2)) { try params.withUnsafeMutableBufferPointer { try o.apply(dup, lr: 0.1, to: $0) } }
        #expect(params == before)
    }

    /// With a lossy format the payload holds the quantized values, and the residual had exactly
    /// the IDCT of those subtracted.
    @Test(arguments: [DeMoValueFormat.bf16, .int8, .sign])
    func lossyFormatFeedsBackQuantizedValues(format: DeMoValueFormat) throws {
        var lossy = try makeOptimizer(format)
        let g = randomFloats(testLayout.totalCount, seed: 11)
        let (payload, traces) = try g.withUnsafeBufferPointer { try lossy.prepareTraced(gradients: $0, lr: 0.01, trace: true) }
        // Encoding then decoding changes nothing: the values are already what receivers see.
        let bytes = try DeMoCodec.encode(payload, plan: lossy.plan)
        #expect(try DeMoCodec.decode(bytes, plan: lossy.plan) == payload)
        for (t, tp) in lossy.plan.tensors.enumerated() {
            var est = [Float](repeating: 0, count: tp.count)
            est.withUnsafeMutableBufferPointer {
                DeMoOptimizer.sparseDecode(tp, lossy.transforms[t], payload.tensors[t].indices, payload.tensors[t].values, into: $0.baseAddress!)
            }
            #expect(est == traces[t].localEstimate)
            for i in 0..<tp.count {
                let m = (Float(0) * 0.9).addingProduct(g[tp.offset + i], Float(0.01))
                #expect(lossy.residual[tp.offset + i] == m - est[i])
            }
        }
    }

    @Test func residualRoundTripsForCheckpoints() throws {
        var o = try makeOptimizer()
        _ = try prepare(&o, randomFloats(testLayout.totalCount, seed: 12))
        var o2 = try makeOptimizer()
        try o2.setResidual(o.residual)
        let g = randomFloats(testLayout.totalCount, seed: 13)
        #expect(try prepare(&o, g) == (try prepare(&o2, g)))
        #expect(throws: DeMoError.self) { try o2.setResidual([1, 2, 3]) }
        var bad = o.residual; bad[testLayout.slot(named: "w")!.offset + 2] = .nan
        #expect(throws: DeMoError.nonFiniteResidual(tensor: "w", index: 2)) { try o2.setResidual(bad) }
        #expect(throws: DeMoError.self) { _ = try DeMoOptimizer(layout: testLayout, config: DeMoConfig(decay: 1)) }
        #expect(throws: DeMoError.self) { _ = try DeMoOptimizer(layout: testLayout, config: DeMoConfig(topk: 0)) }
        #expect(throws: DeMoError.self) { _ = try DeMoOptimizer(layout: testLayout, config: DeMoConfig(chunk: 1 << 20)) }
        #expect(throws: DeMoError.self) { _ = try DeMoOptimizer(layout: testLayout, config: DeMoConfig(weightDecay: -1)) }
    }
}

@Suite struct ThreeDTensorTests {
    /// A [4, 6, 10] tensor is handled as its [4, 60] matrix view (the reference crashes on it).
    @Test func threeDMatchesItsTwoDView() throws {
        let cfg = DeMoConfig(decay: 0.9, topk: 7, chunk: 16, valueFormat: .f32)
        var a = try DeMoOptimizer(layout: ParameterLayout([(name: "t", shape: [4, 6, 10])]), config: cfg)
        var b = try DeMoOptimizer(layout: ParameterLayout([(name: "t", shape: [4, 60])]), config: cfg)
        #expect(a.plan.tensors[0].chunkRows == 4 && a.plan.tensors[0].chunkCols == 15)
        var pa = randomFloats(240, seed: 30), pb = pa
        for s in 0..<3 {
            let g = randomFloats(240, seed: 31 + UInt64(s))
            let ya = try prepare(&a, g), yb = try prepare(&b, g)
            #expect(ya == yb)
            #expect(ya.tensors[0].indices.count == 4 * 7)
            try pa.withUnsafeMutableBufferPointer { try a.apply([DeMoContribution(peer: 0, payload: ya)], lr: 0.1, to: $0) }
            try pb.withUnsafeMutableBufferPointer { try b.apply([DeMoContribution(peer: 0, payload: yb)], lr: 0.1, to: $0) }
        }
        #expect(pa == pb)
        #expect(a.residual == b.residual)
        #expect(a.residual.contains { $0 != 0 })
    }
}

@Test func emptyLayoutIsANoOp() throws {
    var o = try DeMoOptimizer(layout: ParameterLayout([]), config: DeMoConfig())
    let p = try [Float]().withUnsafeBufferPointer { try o.prepare(gradients: $0, lr: 0.1) }
    #expect(p.tensors.isEmpty)
    var params: [Float] = []
    try params.withUnsafeMutableBufferPointer { try o.apply([DeMoContribution(peer: 0, payload: p)], lr: 0.1, to: $0) }
    #expect(try DeMoCodec.decode(try DeMoCodec.encode(p, plan: o.plan), plan: o.plan) == p)
}
