import Foundation
import Tensors

/// Multi-head causal self-attention core (everything between `c_attn` and `c_proj`).
///
/// Shapes (row-major): `qkv` (B, T, 3C) holding q | k | v, head `h` in columns `h*hs ..< (h+1)*hs` of
/// each part, hs = C / NH; `att` (B, NH, T, T) the softmax probabilities (row t is zero beyond
/// column t), saved for backward; `out` (B, T, C) with head h in columns `h*hs ..< (h+1)*hs`.
///
/// Both products per (batch, head) pair, `q k^T` and `P v`, go through `BLAS.sgemm` with strides
/// that read the heads in place (no transposes or copies). Pairs are independent and write disjoint
/// memory, so they are spread over up to `threads` workers.
///
/// Every GEMM accumulates (beta 1) into outputs zeroed up front with one memset: OpenBLAS implements
/// beta 0 as a separate scalar zeroing pass per call, which cost more than the small products here.
public enum CausalAttention {
    /// Writes `att` and `out` (overwrites).
    public static func forward(out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                               qkv: UnsafePointer<Float>, B: Int, T: Int, C: Int, NH: Int, threads: Int = 1) {
        let hs = C / NH, C3 = 3 * C
        let scale = 1 / Float(hs).squareRoot()
        att.update(repeating: 0, count: B * NH * T * T)
        out.update(repeating: 0, count: B * T * C)
        Parallel.ranges(B * NH, threads: threads) { pairs in
            for pair in pairs {
                let b = pair / NH, h = pair % NH
                let q = qkv + b * T * C3 + h * hs
                let k = q + C, v = q + 2 * C
                let p = att + pair * T * T
                // Scores for the whole square; the upper triangle is overwritten by the mask below.
                BLAS.sgemm(.none, .transposed, m: T, n: T, k: hs, alpha: scale, a: q, lda: C3, b: k, ldb: C3,
                           beta: 1, c: p, ldc: T)
                for t in 0..<T {
                    let row = p + t * T
                    let mx = FastMath.max(row, t + 1)
                    for j in 0...t { row[j] = FastMath.fastExp(row[j] - mx) }
                    let inv = 1 / FastMath.sum(row, t + 1)
                    for j in 0...t { row[j] *= inv }
                    for j in (t + 1)..<T { row[j] = 0 }
                }
                BLAS.sgemm(.none, .none, m: T, n: hs, k: T, a: p, lda: T, b: v, ldb: C3,
                           beta: 1, c: out + b * T * C + h * hs, ldc: C)
            }
        }
    }

    /// Writes `dqkv` (B, T, 3C) (overwrites every element) from `dout` (B, T, C); `datt`
    /// (B, NH, T, T) is scratch.
    public static func backward(dqkv: UnsafeMutablePointer<Float>, datt: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>, att: UnsafePointer<Float>,
                                B: Int, T: Int, C: Int, NH: Int, threads: Int = 1) {
        let hs = C / NH, C3 = 3 * C
        let scale = 1 / Float(hs).squareRoot()
        dqkv.update(repeating: 0, count: B * T * C3)
        datt.update(repeating: 0, count: B * NH * T * T)
        Parallel.ranges(B * NH, threads: threads) { pairs in
            for pair in pairs {
                let b = pair / NH, h = pair % NH
                let q = qkv + b * T * C3 + h * hs
                let k = q + C, v = q + 2 * C
                let dq = dqkv + b * T * C3 + h * hs
                let dk = dq + C, dv = dq + 2 * C
                let p = att + pair * T * T
                let dp = datt + pair * T * T
                let dy = dout + b * T * C + h * hs
                // dP = dY V^T ; dV = P^T dY
                BLAS.sgemm(.none, .transposed, m: T, n: T, k: hs, a: dy, lda: C, b: v, ldb: C3, beta: 1, c: dp, ldc: T)
                BLAS.sgemm(.transposed, .none, m: T, n: hs, k: T, a: p, lda: T, b: dy, ldb: C, beta: 1, c: dv, ldc: C3)
                // Softmax backward, scale folded in: dS = P ⊙ (dP − Σ_j P dP) / sqrt(hs).
                for t in 0..<T {
                    let pr = p + t * T, dr = dp + t * T
                    let dot = FastMath.dot(pr, dr, t + 1)
                    for j in 0...t { dr[j] = pr[j] * (dr[j] - dot) * scale }
                    for j in (t + 1)..<T { dr[j] = 0 }
                }
                // dQ = dS K ; dK = dS^T Q
                BLAS.sgemm(.none, .none, m: T, n: hs, k: T, a: dp, lda: T, b: k, ldb: C3, beta: 1, c: dq, ldc: C3)
                BLAS.sgemm(.transposed, .none, m: T, n: hs, k: T, a: dp, lda: T, b: q, ldb: C3, beta: 1, c: dk, ldc: C3)
            }
        }
    }

    /// Slow reference kernels: explicit loops in Double, used only by tests.
    public enum Reference {
        /// Writes `out` (B, T, C) and `att` (B, NH, T, T).
        public static func forward(out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                                   qkv: UnsafePointer<Float>, B: Int, T: Int, C: Int, NH: Int) {
            let hs = C / NH, C3 = 3 * C
            let scale = 1 / Double(hs).squareRoot()
            for b in 0..<B {
                for h in 0..<NH {
                    for t in 0..<T {
                        var s = [Double](repeating: 0, count: t + 1)
                        for j in 0...t {
                            var acc = 0.0
                            for i in 0..<hs {
                                acc += Double(qkv[(b * T + t) * C3 + h * hs + i]) * Double(qkv[(b * T + j) * C3 + C + h * hs + i])
                            }
                            s[j] = acc * scale
                        }
                        let mx = s.max()!
                        let e = s.map { exp($0 - mx) }
                        let sum = e.reduce(0, +)
                        let row = att + ((b * NH + h) * T + t) * T
                        for j in 0..<T { row[j] = j <= t ? Float(e[j] / sum) : 0 }
                        for i in 0..<hs {
                            var acc = 0.0
                            for j in 0...t { acc += e[j] / sum * Double(qkv[(b * T + j) * C3 + 2 * C + h * hs + i]) }
                            out[(b * T + t) * C + h * hs + i] = Float(acc)
                        }
                    }
                }
            }
        }

        /// Writes `dqkv` (B, T, 3C) (overwrites) from `dout`, recomputing probabilities from `qkv`.
        public static func backward(dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                    qkv: UnsafePointer<Float>, B: Int, T: Int, C: Int, NH: Int) {
            let hs = C / NH, C3 = 3 * C
            let scale = 1 / Double(hs).squareRoot()
            var att = [Float](repeating: 0, count: B * NH * T * T)
            var tmp = [Float](repeating: 0, count: B * T * C)
            att.withUnsafeMutableBufferPointer { a in
                tmp.withUnsafeMutableBufferPointer { o in
                    forward(out: o.baseAddress!, att: a.baseAddress!, qkv: qkv, B: B, T: T, C: C, NH: NH)
                }
            }
            dqkv.update(repeating: 0, count: B * T * C3)
            func qi(_ b: Int, _ t: Int, _ part: Int, _ h: Int, _ i: Int) -> Int { (b * T + t) * C3 + part * C + h * hs + i }
            for b in 0..<B {
                for h in 0..<NH {
                    for t in 0..<T {
                        let p = (0...t).map { Double(att[((b * NH + h) * T + t) * T + $0]) }
                        var dp = [Double](repeating: 0, count: t + 1)
                        for j in 0...t {
                            for i in 0..<hs {
                                let g = Double(dout[(b * T + t) * C + h * hs + i])
                                dp[j] += g * Double(qkv[qi(b, j, 2, h, i)])
                                dqkv[qi(b, j, 2, h, i)] += Float(p[j] * g)
                            }
                        }
                        let dot = zip(p, dp).map { $0 * $1 }.reduce(0, +)
                        for j in 0...t {
                            let ds = p[j] * (dp[j] - dot) * scale
                            for i in 0..<hs {
                                dqkv[qi(b, t, 0, h, i)] += Float(ds * Double(qkv[qi(b, j, 1, h, i)]))
                                dqkv[qi(b, j, 1, h, i)] += Float(ds * Double(qkv[qi(b, t, 0, h, i)]))
                            }
                        }
                    }
                }
            }
        }
    }
}

