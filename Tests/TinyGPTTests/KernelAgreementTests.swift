import Foundation
import Tensors
import Testing
@testable import TinyGPT

/// Every fast kernel against its `Reference` twin on random inputs, with sizes that are not
/// multiples of the vector width (to cover the loop tails) and several worker counts.
@Suite struct KernelAgreementTests {
    init() { useSingleThreadedBLAS() }

    static let tol: Float = 2e-5

    @Test func embedding() {
        var rng = SeededRNG(seed: 11)
        let B = 3, T = 5, C = 9, V = 7
        let tokens = (0..<(B * T)).map { _ in Int32(rng.next() % UInt64(V)) }
        let wte = randomArray(V * C, &rng), wpe = randomArray(T * C, &rng), d = randomArray(B * T * C, &rng)
        var fast = [Float](repeating: 0, count: B * T * C), slow = fast
        withPointers(&fast) { Embedding.forward(out: $0, tokens: tokens, wte: wte, wpe: wpe, B: B, T: T, C: C) }
        withPointers(&slow) { Embedding.Reference.forward(out: $0, tokens: tokens, wte: wte, wpe: wpe, B: B, T: T, C: C) }
        #expect(maxAbsDiff(fast, slow) <= Self.tol)
        var fw = [Float](repeating: 0, count: V * C), fp = [Float](repeating: 0, count: T * C), sw = fw, sp = fp
        withPointers(&fw, &fp) { Embedding.backward(dwte: $0, dwpe: $1, dout: d, tokens: tokens, B: B, T: T, C: C) }
        withPointers(&sw, &sp) { Embedding.Reference.backward(dwte: $0, dwpe: $1, dout: d, tokens: tokens, B: B, T: T, C: C) }
        #expect(maxAbsDiff(fw, sw) <= Self.tol && maxAbsDiff(fp, sp) <= Self.tol)
    }

    @Test(arguments: [1, 2, 3])
    func layerNorm(threads: Int) {
        var rng = SeededRNG(seed: 12)
        let N = 130, C = 37
        let x = randomArray(N * C, &rng, scale: 3), w = randomArray(C, &rng), b = randomArray(C, &rng), d = randomArray(N * C, &rng)
        var fast = [Float](repeating: 0, count: N * C), slow = fast, mean = [Float](repeating: 0, count: N), rstd = mean
        withPointers(&fast, &mean, &rstd) { o, m, s in
            LayerNorm.forward(out: o, mean: m, rstd: s, inp: x, weight: w, bias: b, N: N, C: C, threads: threads)
        }
        withPointers(&slow) { LayerNorm.Reference.forward(out: $0, inp: x, weight: w, bias: b, N: N, C: C) }
        #expect(maxAbsDiff(fast, slow) <= 1e-4)
        var fdx = [Float](repeating: 0.25, count: N * C), fdw = [Float](repeating: 0, count: C), fdb = fdw
        var sdx = fdx, sdw = fdw, sdb = fdb
        withPointers(&fdx, &fdw, &fdb) { a, bw, bb in
            LayerNorm.backward(dinp: a, dweight: bw, dbias: bb, dout: d, inp: x, weight: w, mean: mean, rstd: rstd, N: N, C: C)
        }
        withPointers(&sdx, &sdw, &sdb) { a, bw, bb in
            LayerNorm.Reference.backward(dinp: a, dweight: bw, dbias: bb, dout: d, inp: x, weight: w, N: N, C: C)
        }
        #expect(maxAbsDiff(fdx, sdx) <= 1e-4)
        #expect(relError(fdw, sdw) <= 1e-5 && relError(fdb, sdb) <= 1e-5)
    }

    @Test(arguments: [Linear.WeightLayout.inOut, .outIn])
    func linear(layout: Linear.WeightLayout) {
        var rng = SeededRNG(seed: 13)
        let N = 19, IC = 23, OC = 17
        let x = randomArray(N * IC, &rng), w = randomArray(IC * OC, &rng), b = randomArray(OC, &rng), d = randomArray(N * OC, &rng)
        var fast = [Float](repeating: 0, count: N * OC), slow = fast
        withPointers(&fast) { Linear.forward(out: $0, inp: x, weight: w, bias: b, N: N, IC: IC, OC: OC, layout: layout) }
        withPointers(&slow) { Linear.Reference.forward(out: $0, inp: x, weight: w, bias: b, N: N, IC: IC, OC: OC, layout: layout) }
        #expect(relError(fast, slow) <= 1e-6)
        var fdx = [Float](repeating: 1, count: N * IC), fdw = [Float](repeating: 0.5, count: IC * OC), fdb = [Float](repeating: 2, count: OC)
        var sdx = fdx, sdw = fdw, sdb = fdb
        withPointers(&fdx, &fdw, &fdb) { px, pw, pb in
            Linear.backward(dinp: px, dweight: pw, dbias: pb, dout: d, inp: x, weight: w, N: N, IC: IC, OC: OC,
                            layout: layout, accumulateInput: true)
        }
        withPointers(&sdx, &sdw, &sdb) { px, pw, pb in
            Linear.Reference.backward(dinp: px, dweight: pw, dbias: pb, dout: d, inp: x, weight: w, N: N, IC: IC, OC: OC, layout: layout)
        }
        #expect(relError(fdx, sdx) <= 1e-6 && relError(fdw, sdw) <= 1e-6 && relError(fdb, sdb) <= 1e-6)
    }

    @Test(arguments: [1, 2, 4])
    func causalAttention(threads: Int) {
        var rng = SeededRNG(seed: 14)
        let B = 3, T = 11, C = 12, NH = 3
        let qkv = randomArray(B * T * 3 * C, &rng), d = randomArray(B * T * C, &rng)
        var fast = [Float](repeating: 0, count: B * T * C), slow = fast
        var fatt = [Float](repeating: 0, count: B * NH * T * T), satt = fatt
        withPointers(&fast, &fatt) { CausalAttention.forward(out: $0, att: $1, qkv: qkv, B: B, T: T, C: C, NH: NH, threads: threads) }
        withPointers(&slow, &satt) { CausalAttention.Reference.forward(out: $0, att: $1, qkv: qkv, B: B, T: T, C: C, NH: NH) }
        #expect(maxAbsDiff(fast, slow) <= 1e-5 && maxAbsDiff(fatt, satt) <= 1e-6)
        var fd = [Float](repeating: .nan, count: B * T * 3 * C), sd = fd, scratch = fatt
        withPointers(&fd, &scratch) { CausalAttention.backward(dqkv: $0, datt: $1, dout: d, qkv: qkv, att: fatt, B: B, T: T, C: C, NH: NH, threads: threads) }
        withPointers(&sd) { CausalAttention.Reference.backward(dqkv: $0, dout: d, qkv: qkv, B: B, T: T, C: C, NH: NH) }
        #expect(relError(fd, sd) <= 1e-5)
    }

    @Test func geluAndFastExp() {
        let n = 1001
        let x = (0..<n).map { Float($0 - 500) / 50 } // -10 ... 10
        let d = (0..<n).map { Float(($0 % 7) - 3) * 0.3 }
        var fast = [Float](repeating: 0, count: n), slow = fast, sig = fast
        withPointers(&fast) { GELU.forward(out: $0, inp: x, n: n, threads: 2) }
        withPointers(&slow) { GELU.Reference.forward(out: $0, inp: x, n: n) }
        // Relative per element: the negative tail must keep its digits (see GELU's documentation).
        for i in 0..<n where slow[i] != 0 { #expect(abs(fast[i] - slow[i]) <= 1e-5 * abs(slow[i]) + 1e-7, "x=\(x[i])") }
        var saved = fast
        withPointers(&saved, &sig) { GELU.forward(out: $0, sigmoid: $1, inp: x, n: n) }
        #expect(saved == fast)
        var fd = [Float](repeating: 0, count: n), fd2 = fd, sd = fd
        withPointers(&fd) { GELU.backward(dinp: $0, inp: x, dout: d, n: n, threads: 2) }
        withPointers(&fd2) { GELU.backward(dinp: $0, inp: x, sigmoid: sig, dout: d, n: n) }
        withPointers(&sd) { GELU.Reference.backward(dinp: $0, inp: x, dout: d, n: n) }
        #expect(maxAbsDiff(fd, sd) <= 1e-5 && maxAbsDiff(fd2, sd) <= 1e-5)
        for v in stride(from: -87.0, through: 88.0, by: 0.37) {
            let got = Double(FastMath.fastExp(Float(v))), want = Foundation.exp(Double(Float(v)))
            #expect(abs(got - want) <= 4e-7 * want, "exp(\(v))")
        }
    }

    @Test func residual() {
        var rng = SeededRNG(seed: 15)
        let n = 29
        let a = randomArray(n, &rng), b = randomArray(n, &rng), d = randomArray(n, &rng)
        var fast = [Float](repeating: 0, count: n), slow = fast
        withPointers(&fast) { Residual.forward(out: $0, a: a, b: b, n: n) }
        withPointers(&slow) { Residual.Reference.forward(out: $0, a: a, b: b, n: n) }
        #expect(maxAbsDiff(fast, slow) <= Self.tol)
        var fa = a, fb = b, sa = a, sb = b
        withPointers(&fa, &fb) { Residual.backward(da: $0, db: $1, dout: d, n: n) }
        withPointers(&sa, &sb) { Residual.Reference.backward(da: $0, db: $1, dout: d, n: n) }
        #expect(maxAbsDiff(fa, sa) <= Self.tol && maxAbsDiff(fb, sb) <= Self.tol)
    }

    @Test(arguments: [1, 2])
    func crossEntropy(threads: Int) {
        var rng = SeededRNG(seed: 16)
        let N = 150, V = 67
        let logits = randomArray(N * V, &rng, scale: 4)
        let targets = (0..<N).map { _ in Int32(rng.next() % UInt64(V)) }
        var fp = [Float](repeating: 0, count: N * V), sp = fp, losses = [Float](repeating: 0, count: N)
        let fast = withPointers(&fp, &losses) { CrossEntropy.forward(probs: $0, losses: $1, logits: logits, targets: targets, N: N, V: V, threads: threads) }
        let slow = withPointers(&sp) { CrossEntropy.Reference.forward(probs: $0, logits: logits, targets: targets, N: N, V: V) }
        #expect(abs(Double(fast) - slow) <= 1e-5 * slow)
        #expect(maxAbsDiff(fp, sp) <= 1e-6)
        var fd = [Float](repeating: 0, count: N * V), sd = fd
        withPointers(&fd) { CrossEntropy.backward(dlogits: $0, probs: fp, targets: targets, N: N, V: V, threads: threads) }
        withPointers(&sd) { CrossEntropy.Reference.backward(dlogits: $0, logits: logits, targets: targets, N: N, V: V) }
        #expect(maxAbsDiff(fd, sd) <= 1e-7)
    }
}
