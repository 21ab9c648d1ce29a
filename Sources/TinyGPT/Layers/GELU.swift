import Foundation

/// GELU, tanh form: `0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³)))` (GPT-2's `gelu_new`).
///
/// Computed through the identity `0.5 (1 + tanh u) = σ(2u)` with `σ(z) = 1 / (1 + e^(-z))`, and
/// `1 - tanh² u = 4 σ(2u) σ(-2u)`. The tanh form cancels catastrophically for negative inputs
/// (`1 + tanh u` with tanh u ≈ -1) and lost most digits of tiny derivatives, which then flipped AdamW
/// updates of weights with near-zero gradients; the σ form keeps full relative precision.
public enum GELU {
    static let k0: Float = 0.7978845608028654 // sqrt(2/π)
    static let k1: Float = 0.044715

    /// Writes `out[i] = gelu(inp[i])` for `n` elements (overwrites).
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, n: Int, threads: Int = 1) {
        Parallel.ranges(n, threads: threads, minPerThread: 4096) { r in
            for i in r {
                let x = inp[i]
                out[i] = x * sigmoid2u(x).s
            }
        }
    }

    /// Writes `dinp[i] = dout[i] · gelu'(inp[i])` (overwrites; `dinp` may alias `dout`).
    public static func backward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                dout: UnsafePointer<Float>, n: Int, threads: Int = 1) {
        Parallel.ranges(n, threads: threads, minPerThread: 4096) { r in
            for i in r {
                let x = inp[i]
                let (s, sc) = sigmoid2u(x)
                // d/dx [x σ(2u)] = σ(2u) + x · 2 σ(2u) σ(-2u) · u'(x)
                let g = s + 2 * x * s * sc * k0 * (1 + 3 * k1 * x * x)
                dinp[i] = dout[i] * g
            }
        }
    }

    /// `(σ(2u), σ(-2u))` for `u = sqrt(2/π)(x + 0.044715 x³)`, both without cancellation.
    @inline(__always)
    static func sigmoid2u(_ x: Float) -> (s: Float, sc: Float) {
        let u = k0 * (x + k1 * x * x * x)
        // fastExp clamps its input, so e stays finite; σ saturates to float precision long before.
        let e = FastMath.fastExp(-2 * u)
        let s = 1 / (1 + e)
        return (s, e * s)
    }

    /// Like `forward`, also saving σ(2u) per element in `sigmoid` for `backward(dinp:inp:sigmoid:...)`.
    public static func forward(out: UnsafeMutablePointer<Float>, sigmoid: UnsafeMutablePointer<Float>,
                               inp: UnsafePointer<Float>, n: Int) {
        for i in 0..<n {
            let x = inp[i]
            let s = sigmoid2u(x).s
            sigmoid[i] = s
            out[i] = x * s
        }
    }

    /// `backward` using the σ(2u) saved by `forward(out:sigmoid:...)` instead of recomputing the
    /// exponential. σ(-2u) = 1 − σ(2u) loses relative precision only where σ(2u) ≈ 1, where that term
    /// is negligible next to σ(2u).
    public static func backward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                sigmoid: UnsafePointer<Float>, dout: UnsafePointer<Float>, n: Int) {
        for i in 0..<n {
            let x = inp[i], s = sigmoid[i]
            let g = s + 2 * x * s * (1 - s) * k0 * (1 + 3 * k1 * x * x)
            dinp[i] = dout[i] * g
        }
    }

    /// Slow reference kernels in Double, used only by tests.
    public enum Reference {
        public static func value(_ x: Double) -> Double {
            0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        }

        public static func derivative(_ x: Double) -> Double {
            let k = (2 / Double.pi).squareRoot()
            let th = tanh(k * (x + 0.044715 * x * x * x))
            return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * k * (1 + 3 * 0.044715 * x * x)
        }

        public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, n: Int) {
            for i in 0..<n { out[i] = Float(value(Double(inp[i]))) }
        }

        public static func backward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                    dout: UnsafePointer<Float>, n: Int) {
            for i in 0..<n { dinp[i] = Float(Double(dout[i]) * derivative(Double(inp[i]))) }
        }
    }
}
