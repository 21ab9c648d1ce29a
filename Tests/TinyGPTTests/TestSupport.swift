import Tensors

/// `n` normal(0, scale) draws from `rng`.
func randomArray(_ n: Int, _ rng: inout SeededRNG, scale: Float = 1) -> [Float] {
    (0..<n).map { _ in rng.nextNormal() * scale }
}

/// ‖a − b‖ / ‖b‖ in Double (‖a − b‖ when b is zero).
func relError(_ a: [Float], _ b: [Float]) -> Double {
    relError(a.map(Double.init), b.map(Double.init))
}

func relError(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "size mismatch \(a.count) vs \(b.count)")
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) {
        num += (x - y) * (x - y)
        den += y * y
    }
    return den > 0 ? (num / den).squareRoot() : num.squareRoot()
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// Σ out[i]·r[i] in Double: a scalar loss whose gradient with respect to `out` is `r`.
func project(_ out: [Float], _ r: [Float]) -> Double {
    zip(out, r).reduce(0) { $0 + Double($1.0) * Double($1.1) }
}

/// Central differences of `loss` with respect to every element of `x` (restored afterwards).
/// Evaluated in Float with the loss accumulated in Double; `h` trades truncation for rounding error.
func numericGradient(_ x: inout [Float], h: Float = 1e-2, _ loss: ([Float]) -> Double) -> [Double] {
    var g = [Double](repeating: 0, count: x.count)
    for i in x.indices {
        let orig = x[i]
        x[i] = orig + h
        let up = loss(x)
        x[i] = orig - h
        let down = loss(x)
        x[i] = orig
        g[i] = (up - down) / Double((orig + h) - (orig - h))
    }
    return g
}

/// Runs `body` with mutable base pointers of several arrays at once.
func withPointers<R>(_ a: inout [Float], _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
    a.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
}

func withPointers<R>(_ a: inout [Float], _ b: inout [Float],
                     _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> R) -> R {
    a.withUnsafeMutableBufferPointer { pa in b.withUnsafeMutableBufferPointer { pb in body(pa.baseAddress!, pb.baseAddress!) } }
}

func withPointers<R>(_ a: inout [Float], _ b: inout [Float], _ c: inout [Float],
                     _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> R) -> R {
    a.withUnsafeMutableBufferPointer { pa in
        b.withUnsafeMutableBufferPointer { pb in
            c.withUnsafeMutableBufferPointer { pc in body(pa.baseAddress!, pb.baseAddress!, pc.baseAddress!) }
        }
    }
}

/// Tests run concurrently in one process; threaded OpenBLAS calls from many test threads at once
/// oversubscribe the cores (OpenBLAS workers spin while waiting) and made a run take minutes.
/// Every suite that calls BLAS starts with this.
func useSingleThreadedBLAS() {
    if BLAS.threads != 1 { BLAS.setThreads(1) }
}
