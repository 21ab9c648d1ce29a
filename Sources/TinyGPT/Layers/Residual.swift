/// Residual connection `out = a + b` over `n` elements.
///
/// In `GPTModel` the backward pass is realised by aliasing: the branch reads the same gradient buffer
/// the residual stream keeps, which is exactly `da += dout; db += dout` without a copy. The explicit
/// kernels below exist for clarity and for the tests.
public enum Residual {
    /// `out[i] = a[i] + b[i]` (overwrites `out`; `out` may alias `a` or `b`).
    public static func forward(out: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, n: Int) {
        for i in 0..<n { out[i] = a[i] + b[i] }
    }

    /// Accumulates `dout` into both `da` and `db`.
    public static func backward(da: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, n: Int) {
        for i in 0..<n {
            da[i] += dout[i]
            db[i] += dout[i]
        }
    }

    /// Slow reference kernels (Double arithmetic), used only by tests.
    public enum Reference {
        public static func forward(out: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, n: Int) {
            for i in 0..<n { out[i] = Float(Double(a[i]) + Double(b[i])) }
        }

        public static func backward(da: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>,
                                    dout: UnsafePointer<Float>, n: Int) {
            for i in 0..<n {
                da[i] = Float(Double(da[i]) + Double(dout[i]))
                db[i] = Float(Double(db[i]) + Double(dout[i]))
            }
        }
    }
}
