/// Token + position embedding: `out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]`.
///
/// Shapes (row-major): `tokens` (B, T) int32 in `0..<V`, `wte` (V, C), `wpe` (≥T, C), `out` (B, T, C).
public enum Embedding {
    /// Writes `out` (overwrites). Tokens must already be validated to lie in `0..<V`.
    public static func forward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>,
                               wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        for b in 0..<B {
            for t in 0..<T {
                let o = out + (b * T + t) * C
                let e = wte + Int(tokens[b * T + t]) * C
                let p = wpe + t * C
                for i in 0..<C { o[i] = e[i] + p[i] }
            }
        }
    }

    /// Accumulates into `dwte` (V, C) and `dwpe` (≥T, C) from `dout` (B, T, C).
    public static func backward(dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>, B: Int, T: Int, C: Int) {
        for b in 0..<B {
            for t in 0..<T {
                let d = dout + (b * T + t) * C
                FastMath.add(dwte + Int(tokens[b * T + t]) * C, d, C)
                FastMath.add(dwpe + t * C, d, C)
            }
        }
    }

    /// Slow reference kernels: the same maths written per element, used only by tests.
    public enum Reference {
        public static func forward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>,
                                   wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
            for i in 0..<(B * T * C) {
                let row = i / C, c = i % C, t = row % T
                out[i] = wte[Int(tokens[row]) * C + c] + wpe[t * C + c]
            }
        }

        public static func backward(dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>,
                                    dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>, B: Int, T: Int, C: Int) {
            for i in 0..<(B * T * C) {
                let row = i / C, c = i % C, t = row % T
                dwte[Int(tokens[row]) * C + c] += dout[i]
                dwpe[t * C + c] += dout[i]
            }
        }
    }
}
