/// LayerNorm over the last dimension: `out = (x - mean) * rstd * weight + bias`, eps 1e-5, biased
/// variance (PyTorch's `nn.LayerNorm`).
///
/// Shapes: `inp`/`out` (N, C) with N = B·T rows; `mean`/`rstd` (N) are saved for the backward pass;
/// `weight`/`bias` (C).
public enum LayerNorm {
    public static let eps: Float = 1e-5

    /// Writes `out`, `mean` and `rstd` (overwrites). Rows are split over up to `threads` workers.
    public static func forward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                               rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                               N: Int, C: Int, threads: Int = 1) {
        Parallel.ranges(N, threads: threads, minPerThread: 64) { rows in
            for r in rows {
                let x = inp + r * C
                let m = FastMath.sum(x, C) / Float(C)
                let v = FastMath.sumSquaredDeviation(x, m, C) / Float(C)
                let s = 1 / (v + eps).squareRoot()
                let o = out + r * C
                for i in 0..<C { o[i] = (x[i] - m) * s * weight[i] + bias[i] }
                mean[r] = m
                rstd[r] = s
            }
        }
    }

    /// Accumulates into `dinp` (N, C), `dweight` (C) and `dbias` (C) from `dout` (N, C), using the
    /// `mean`/`rstd` saved by `forward`.
    public static func backward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
                                dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, N: Int, C: Int) {
        for r in 0..<N {
            let x = inp + r * C, d = dout + r * C, di = dinp + r * C
            let m = mean[r], s = rstd[r]
            // The two row means the input gradient needs: mean(dy·w) and mean(dy·w·xhat).
            let dm = FastMath.dot(d, weight, C) / Float(C)
            var dwx = SIMD8<Float>(repeating: 0)
            let mv = SIMD8<Float>(repeating: m), sv = SIMD8<Float>(repeating: s)
            var i = 0
            while i + 8 <= C {
                dwx += FastMath.load8(d + i) * FastMath.load8(weight + i) * (FastMath.load8(x + i) - mv)
                i += 8
            }
            var dwxs = dwx.sum()
            while i < C { dwxs += d[i] * weight[i] * (x[i] - m); i += 1 }
            let dmx = dwxs / Float(C) * s
            // dbias += dy; dweight += xhat·dy; dinp += (dy·w − dm − xhat·dmx)·s, eight lanes at a time.
            let dmv = SIMD8<Float>(repeating: dm), dmxv = SIMD8<Float>(repeating: dmx)
            i = 0
            while i + 8 <= C {
                let dv = FastMath.load8(d + i)
                let xh = (FastMath.load8(x + i) - mv) * sv
                FastMath.store8(FastMath.load8(dbias + i) + dv, dbias + i)
                FastMath.store8(FastMath.load8(dweight + i) + xh * dv, dweight + i)
                FastMath.store8(FastMath.load8(di + i) + (dv * FastMath.load8(weight + i) - dmv - xh * dmxv) * sv, di + i)
                i += 8
            }
            while i < C {
                let xhat = (x[i] - m) * s
                dbias[i] += d[i]
                dweight[i] += xhat * d[i]
                di[i] += (d[i] * weight[i] - dm - xhat * dmx) * s
                i += 1
            }
        }
    }

    /// Slow reference kernels computed in Double, used only by tests.
    public enum Reference {
        /// Mean and reciprocal standard deviation of one row of `C` values, in Double.
        static func stats(_ x: UnsafePointer<Float>, _ C: Int) -> (mean: Double, rstd: Double) {
            var m = 0.0, v = 0.0
            for i in 0..<C { m += Double(x[i]) }
            m /= Double(C)
            for i in 0..<C { v += (Double(x[i]) - m) * (Double(x[i]) - m) }
            v /= Double(C)
            return (m, 1 / (v + Double(eps)).squareRoot())
        }

        public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, N: Int, C: Int) {
            for r in 0..<N {
                let (m, s) = stats(inp + r * C, C)
                for i in 0..<C {
                    out[r * C + i] = Float((Double(inp[r * C + i]) - m) * s * Double(weight[i]) + Double(bias[i]))
                }
            }
        }

        /// Accumulates like `LayerNorm.backward`, recomputing the statistics itself.
        public static func backward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
                                    dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                    inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, N: Int, C: Int) {
            for r in 0..<N {
                let (m, s) = stats(inp + r * C, C)
                let xhat = (0..<C).map { (Double(inp[r * C + $0]) - m) * s }
                let g = (0..<C).map { Double(dout[r * C + $0]) * Double(weight[$0]) }
                let gMean = g.reduce(0, +) / Double(C)
                let gxMean = zip(g, xhat).map { $0 * $1 }.reduce(0, +) / Double(C)
                for i in 0..<C {
                    dbias[i] += dout[r * C + i]
                    dweight[i] += Float(xhat[i] * Double(dout[r * C + i]))
                    dinp[r * C + i] += Float((g[i] - gMean - xhat[i] * gxMean) * s)
                }
            }
        }
    }
}
