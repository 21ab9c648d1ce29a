import Foundation
import Testing
@_spi(DeMoInternals) @testable import DeMo
import Tensors

/// Random normal floats from a seeded generator.
func randomFloats(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var rng = SeededRNG(seed: seed)
    return (0..<n).map { _ in rng.nextNormal() * scale }
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

@Suite struct ChunkRuleTests {
    @Test func matchesBruteForce() {
        for target in 1...70 {
            for n in 1...300 {
                let brute = n <= target ? n : (1...target).last { n % $0 == 0 }!
                #expect(demoChunkSize(n, target: target) == brute, "n=\(n) T=\(target)")
            }
        }
    }

    @Test func knownModelSizes() {
        #expect(demoChunkSize(50304, target: 64) == 64)
        #expect(demoChunkSize(50257, target: 64) == 29)
        #expect(demoChunkSize(1009, target: 64) == 1)
        #expect(demoChunkSize(96, target: 64) == 48)
        #expect(demoChunkSize(2304, target: 64) == 64)
    }

    @Test func threeDTensorIsViewedAsTwoD() {
        let p = DeMoTensorPlan(name: "conv", shape: [4, 8, 8], offset: 0, targetChunk: 16, topk: 5)
        #expect(p.rows == 4 && p.cols == 64)
        #expect(p.chunkRows == 4 && p.chunkCols == 16)
        #expect(p.chunkCount == 4 && p.totalk == 64 && p.k == 5)
        #expect(p.indexBits == 6)
        let scalar = DeMoTensorPlan(name: "s", shape: [], offset: 0, targetChunk: 64, topk: 32)
        #expect(scalar.count == 1 && scalar.k == 1 && scalar.indexBits == 0)
    }
}

@Suite struct DCTTests {
    @Test(arguments: [1, 2, 3, 7, 16, 48, 64])
    func basisIsOrthonormal(n: Int) {
        let c = DCTBasis(n: n).c
        var worst = 0.0
        for i in 0..<n { for j in 0..<n {
            var dot = 0.0
            for q in 0..<n { dot += Double(c[i * n + q]) * Double(c[j * n + q]) }
            worst = max(worst, abs(dot - (i == j ? 1 : 0)))
        } }
        #expect(worst < 1e-6, "n=\(n): C·Cᵀ deviates from I by \(worst)")
    }

    @Test(arguments: [[64], [100], [67], [12, 18], [24, 40], [7, 13], [50, 70], [4, 6, 10], [128, 96]])
    func fastMatchesNaive(shape: [Int]) {
        let plan = DeMoTensorPlan(name: "t", shape: shape, offset: 0, targetChunk: 16, topk: 4)
        let x = randomFloats(plan.count, seed: UInt64(plan.count))
        let tr = ChunkTransform(plan: plan)
        var enc = [Float](repeating: 0, count: plan.count), scratch = enc, back = enc
        x.withUnsafeBufferPointer { xp in enc.withUnsafeMutableBufferPointer { ep in scratch.withUnsafeMutableBufferPointer { sp in
            tr.encode(xp.baseAddress!, into: ep.baseAddress!, scratch: sp.baseAddress!)
        } } }
        enc.withUnsafeBufferPointer { ep in back.withUnsafeMutableBufferPointer { bp in scratch.withUnsafeMutableBufferPointer { sp in
            tr.decodeDense(ep.baseAddress!, into: bp.baseAddress!, scratch: sp.baseAddress!)
        } } }
        let naiveEnc = NaiveDCT.transform(x, plan: plan, inverse: false)
        let naiveBack = NaiveDCT.transform(naiveEnc, plan: plan, inverse: true)
        let scale = x.map { abs($0) }.max()!
        #expect(maxAbsDiff(enc, naiveEnc) < 1e-5 * scale)
        #expect(maxAbsDiff(back, x) < 1e-5 * scale)
        #expect(maxAbsDiff(naiveBack, x) < 1e-5 * scale)
        if plan.totalk > 1 { #expect(maxAbsDiff(enc, x) > 1e-3, "the transform must actually change the data") }
    }

    /// The sparse decoder equals the dense inverse of the scattered coefficients, for rows- and
    /// columns-grouped paths.
    @Test(arguments: [[Int]([0, 1, 2, 3]), [0, 16, 32, 48], [5, 17, 18, 40, 63], [0], Array(0..<64)])
    func sparseMatchesDense(indices: [Int]) {
        let plan = DeMoTensorPlan(name: "t", shape: [8, 8], offset: 0, targetChunk: 8, topk: indices.count)
        let tr = ChunkTransform(plan: plan)
        let vals = randomFloats(indices.count, seed: 7)
        var dense = [Float](repeating: 0, count: 64)
        for (i, v) in zip(indices, vals) { dense[i] = v }  // one chunk: tensor layout == chunk layout
        let ref = NaiveDCT.transform(dense, plan: plan, inverse: true)
        var out = [Float](repeating: 0, count: 64)
        out.withUnsafeMutableBufferPointer {
            DeMoOptimizer.sparseDecode(plan, tr, indices.map(UInt32.init), vals, into: $0.baseAddress!)
        }
        #expect(maxAbsDiff(out, ref) < 1e-5)
    }
}
