import Tensors
import Testing
@testable import TinyGPT

/// Each layer's backward pass against central finite differences of its own forward pass, on tiny
/// sizes. The scalar loss is Σ out ⊙ R for a fixed random R (so dL/dout = R), except cross-entropy,
/// whose loss is its own mean. Tolerance is on ‖numeric − analytic‖ / ‖analytic‖; a wrong backward
/// gives errors of order 1.
@Suite struct LayerGradientTests {
    init() { useSingleThreadedBLAS() }

    static let tol = 2e-3

    @Test func embedding() {
        var rng = SeededRNG(seed: 1)
        let B = 2, T = 3, C = 4, V = 5
        let tokens: [Int32] = [0, 3, 3, 4, 1, 0]
        var wte = randomArray(V * C, &rng), wpe = randomArray(T * C, &rng)
        let r = randomArray(B * T * C, &rng)
        func loss(_ wte: [Float], _ wpe: [Float]) -> Double {
            var out = [Float](repeating: 0, count: B * T * C)
            out.withUnsafeMutableBufferPointer { o in
                Embedding.forward(out: o.baseAddress!, tokens: tokens, wte: wte, wpe: wpe, B: B, T: T, C: C)
            }
            return project(out, r)
        }
        var dwte = [Float](repeating: 0, count: V * C), dwpe = [Float](repeating: 0, count: T * C)
        withPointers(&dwte, &dwpe) { a, b in Embedding.backward(dwte: a, dwpe: b, dout: r, tokens: tokens, B: B, T: T, C: C) }
        let wpeCopy = wpe, wteCopy = wte
        #expect(relError(dwte.map(Double.init), numericGradient(&wte) { loss($0, wpeCopy) }) < Self.tol)
        #expect(relError(dwpe.map(Double.init), numericGradient(&wpe) { loss(wteCopy, $0) }) < Self.tol)
    }

    @Test func layerNorm() {
        var rng = SeededRNG(seed: 2)
        let N = 3, C = 11
        var x = randomArray(N * C, &rng), w = randomArray(C, &rng), b = randomArray(C, &rng)
        let r = randomArray(N * C, &rng)
        func loss(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: N * C), mean = [Float](repeating: 0, count: N), rstd = mean
            withPointers(&out, &mean, &rstd) { o, m, s in LayerNorm.forward(out: o, mean: m, rstd: s, inp: x, weight: w, bias: b, N: N, C: C) }
            return project(out, r)
        }
        var mean = [Float](repeating: 0, count: N), rstd = mean, out = [Float](repeating: 0, count: N * C)
        withPointers(&out, &mean, &rstd) { o, m, s in LayerNorm.forward(out: o, mean: m, rstd: s, inp: x, weight: w, bias: b, N: N, C: C) }
        var dx = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: C), db = dw
        withPointers(&dx, &dw, &db) { px, pw, pb in
            LayerNorm.backward(dinp: px, dweight: pw, dbias: pb, dout: r, inp: x, weight: w, mean: mean, rstd: rstd, N: N, C: C)
        }
        let (x0, w0, b0) = (x, w, b)
        #expect(relError(dx.map(Double.init), numericGradient(&x, h: 1e-2) { loss($0, w0, b0) }) < Self.tol)
        #expect(relError(dw.map(Double.init), numericGradient(&w) { loss(x0, $0, b0) }) < Self.tol)
        #expect(relError(db.map(Double.init), numericGradient(&b) { loss(x0, w0, $0) }) < Self.tol)
    }

    @Test(arguments: [Linear.WeightLayout.inOut, .outIn])
    func linear(layout: Linear.WeightLayout) {
        var rng = SeededRNG(seed: 3)
        let N = 4, IC = 5, OC = 3
        var x = randomArray(N * IC, &rng), w = randomArray(IC * OC, &rng), b = randomArray(OC, &rng)
        let r = randomArray(N * OC, &rng)
        func loss(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: N * OC)
            withPointers(&out) { Linear.forward(out: $0, inp: x, weight: w, bias: b, N: N, IC: IC, OC: OC, layout: layout) }
            return project(out, r)
        }
        var dx = [Float](repeating: 0, count: N * IC), dw = [Float](repeating: 0, count: IC * OC), db = [Float](repeating: 0, count: OC)
        withPointers(&dx, &dw, &db) { px, pw, pb in
            Linear.backward(dinp: px, dweight: pw, dbias: pb, dout: r, inp: x, weight: w, N: N, IC: IC, OC: OC, layout: layout)
        }
        let (x0, w0, b0) = (x, w, b)
        #expect(relError(dx.map(Double.init), numericGradient(&x) { loss($0, w0, b0) }) < Self.tol)
        #expect(relError(dw.map(Double.init), numericGradient(&w) { loss(x0, $0, b0) }) < Self.tol)
        #expect(relError(db.map(Double.init), numericGradient(&b) { loss(x0, w0, $0) }) < Self.tol)
    }

    @Test func causalAttention() {
        var rng = SeededRNG(seed: 4)
        let B = 2, T = 5, C = 8, NH = 2
        var qkv = randomArray(B * T * 3 * C, &rng)
        let r = randomArray(B * T * C, &rng)
        func loss(_ qkv: [Float]) -> Double {
            var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * NH * T * T)
            withPointers(&out, &att) { o, a in CausalAttention.forward(out: o, att: a, qkv: qkv, B: B, T: T, C: C, NH: NH) }
            return project(out, r)
        }
        var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * NH * T * T)
        withPointers(&out, &att) { o, a in CausalAttention.forward(out: o, att: a, qkv: qkv, B: B, T: T, C: C, NH: NH) }
        var dqkv = [Float](repeating: .nan, count: B * T * 3 * C), datt = att
        withPointers(&dqkv, &datt) { d, s in
            CausalAttention.backward(dqkv: d, datt: s, dout: r, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH)
        }
        #expect(relError(dqkv.map(Double.init), numericGradient(&qkv) { loss($0) }) < Self.tol)
    }

    @Test func gelu() {
        var rng = SeededRNG(seed: 5)
        let n = 40
        // Spread over the curved part and both tails.
        var x = (0..<n).map { Float($0) / Float(n) * 12 - 6 + rng.nextUniform() * 0.1 }
        let r = randomArray(n, &rng)
        func loss(_ x: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n)
            withPointers(&out) { GELU.forward(out: $0, inp: x, n: n) }
            return project(out, r)
        }
        var dx = [Float](repeating: 0, count: n), dxSaved = dx, out = dx, sig = dx
        withPointers(&dx) { GELU.backward(dinp: $0, inp: x, dout: r, n: n) }
        withPointers(&out, &sig) { o, s in GELU.forward(out: o, sigmoid: s, inp: x, n: n) }
        withPointers(&dxSaved) { GELU.backward(dinp: $0, inp: x, sigmoid: sig, dout: r, n: n) }
        let numeric = numericGradient(&x, h: 1e-2) { loss($0) }
        #expect(relError(dx.map(Double.init), numeric) < Self.tol)
        #expect(relError(dxSaved.map(Double.init), numeric) < Self.tol)
    }

    @Test func residual() {
        var rng = SeededRNG(seed: 6)
        let n = 7
        var a = randomArray(n, &rng), b = randomArray(n, &rng)
        let r = randomArray(n, &rng)
        func loss(_ a: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n)
            withPointers(&out) { Residual.forward(out: $0, a: a, b: b, n: n) }
            return project(out, r)
        }
        var da = [Float](repeating: 0.5, count: n), db = [Float](repeating: -1, count: n)
        withPointers(&da, &db) { pa, pb in Residual.backward(da: pa, db: pb, dout: r, n: n) }
        let (a0, b0) = (a, b)
        // backward accumulates: subtract the starting values.
        #expect(relError(da.map { Double($0) - 0.5 }, numericGradient(&a) { loss($0, b0) }) < Self.tol)
        #expect(relError(db.map { Double($0) + 1 }, numericGradient(&b) { loss(a0, $0) }) < Self.tol)
    }

    @Test func crossEntropy() {
        var rng = SeededRNG(seed: 7)
        let N = 3, V = 6
        var logits = randomArray(N * V, &rng, scale: 2)
        let targets: [Int32] = [0, 5, 2]
        func loss(_ l: [Float]) -> Double {
            var probs = [Float](repeating: 0, count: N * V), losses = [Float](repeating: 0, count: N)
            return Double(withPointers(&probs, &losses) { p, ls in
                CrossEntropy.forward(probs: p, losses: ls, logits: l, targets: targets, N: N, V: V)
            })
        }
        var probs = [Float](repeating: 0, count: N * V), losses = [Float](repeating: 0, count: N)
        _ = withPointers(&probs, &losses) { p, ls in CrossEntropy.forward(probs: p, losses: ls, logits: logits, targets: targets, N: N, V: V) }
        var d = [Float](repeating: 0, count: N * V)
        withPointers(&d) { CrossEntropy.backward(dlogits: $0, probs: probs, targets: targets, N: N, V: V) }
        #expect(relError(d.map(Double.init), numericGradient(&logits, h: 1e-2) { loss($0) }) < 5e-3)
    }
}
