import Tensors

/// Fully connected layer `out = inp @ W + b` on BLAS.
///
/// Shapes: `inp` (N, IC), `out` (N, OC), bias (OC). The weight is stored (in, out) = (IC, OC) for
/// every block layer (`.inOut`), or (out, in) = (OC, IC) for the tied LM head, which multiplies by
/// `wte^T` (`.outIn`).
public enum Linear {
    /// How the weight matrix is stored.
    public enum WeightLayout: Sendable {
        /// (IC, OC): `out = inp @ W`.
        case inOut
        /// (OC, IC): `out = inp @ W^T` (the tied head with `wte` (V, C)).
        case outIn
    }

    /// Writes `out` (overwrites).
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               N: Int, IC: Int, OC: Int, layout: WeightLayout = .inOut) {
        // The GEMM always accumulates (beta 1) into rows pre-filled with the bias or zeros: OpenBLAS
        // implements beta 0 as a scalar zeroing pass over C, several times slower than memset.
        if let bias {
            for r in 0..<N { (out + r * OC).update(from: bias, count: OC) }
        } else {
            out.update(repeating: 0, count: N * OC)
        }
        switch layout {
        case .inOut:
            BLAS.sgemm(.none, .none, m: N, n: OC, k: IC, a: inp, lda: IC, b: weight, ldb: OC,
                       beta: 1, c: out, ldc: OC)
        case .outIn:
            BLAS.sgemm(.none, .transposed, m: N, n: OC, k: IC, a: inp, lda: IC, b: weight, ldb: IC,
                       beta: 1, c: out, ldc: OC)
        }
    }

    /// Backward pass. `dinp` (N, IC) is overwritten when `accumulateInput` is false, otherwise added
    /// to; `dweight` (same layout as the weight) and `dbias` (OC) are always accumulated.
    public static func backward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>,
                                dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                N: Int, IC: Int, OC: Int, layout: WeightLayout = .inOut,
                                accumulateInput: Bool = false) {
        if let dinp {
            // Overwrite = zero with memset, then accumulate (see `forward` for why not beta 0).
            if !accumulateInput { dinp.update(repeating: 0, count: N * IC) }
            let beta: Float = 1
            switch layout {
            case .inOut: // dinp = dout @ W^T, W (IC, OC)
                BLAS.sgemm(.none, .transposed, m: N, n: IC, k: OC, a: dout, lda: OC, b: weight, ldb: OC,
                           beta: beta, c: dinp, ldc: IC)
            case .outIn: // dinp = dout @ W, W (OC, IC)
                BLAS.sgemm(.none, .none, m: N, n: IC, k: OC, a: dout, lda: OC, b: weight, ldb: IC,
                           beta: beta, c: dinp, ldc: IC)
            }
        }
        switch layout {
        case .inOut: // dW (IC, OC) += inp^T @ dout
            BLAS.sgemm(.transposed, .none, m: IC, n: OC, k: N, a: inp, lda: IC, b: dout, ldb: OC,
                       beta: 1, c: dweight, ldc: OC)
        case .outIn: // dW (OC, IC) += dout^T @ inp
            BLAS.sgemm(.transposed, .none, m: OC, n: IC, k: N, a: dout, lda: OC, b: inp, ldb: IC,
                       beta: 1, c: dweight, ldc: IC)
        }
        if let dbias {
            for r in 0..<N { FastMath.add(dbias, dout + r * OC, OC) }
        }
    }

    /// Slow reference kernels (triple loops, Double accumulation), used only by tests.
    public enum Reference {
        @inline(__always)
        static func w(_ weight: UnsafePointer<Float>, _ i: Int, _ o: Int, _ IC: Int, _ OC: Int, _ layout: WeightLayout) -> Double {
            Double(layout == .inOut ? weight[i * OC + o] : weight[o * IC + i])
        }

        public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                   N: Int, IC: Int, OC: Int, layout: WeightLayout = .inOut) {
            for r in 0..<N {
                for o in 0..<OC {
                    var acc = bias.map { Double($0[o]) } ?? 0
                    for i in 0..<IC { acc += Double(inp[r * IC + i]) * w(weight, i, o, IC, OC, layout) }
                    out[r * OC + o] = Float(acc)
                }
            }
        }

        /// Same accumulation rules as `Linear.backward` with `accumulateInput: true`.
        public static func backward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
                                    dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                    inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                    N: Int, IC: Int, OC: Int, layout: WeightLayout = .inOut) {
            for r in 0..<N {
                for i in 0..<IC {
                    var acc = 0.0
                    for o in 0..<OC { acc += Double(dout[r * OC + o]) * w(weight, i, o, IC, OC, layout) }
                    dinp[r * IC + i] += Float(acc)
                }
            }
            for i in 0..<IC {
                for o in 0..<OC {
                    var acc = 0.0
                    for r in 0..<N { acc += Double(inp[r * IC + i]) * Double(dout[r * OC + o]) }
                    let idx = layout == .inOut ? i * OC + o : o * IC + i
                    dweight[idx] += Float(acc)
                }
            }
            if let dbias {
                for o in 0..<OC {
                    var acc = 0.0
                    for r in 0..<N { acc += Double(dout[r * OC + o]) }
                    dbias[o] += Float(acc)
                }
            }
        }
    }
}
