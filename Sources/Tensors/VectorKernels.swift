import COpenBLAS

/// Loops BLAS does not cover, run with AVX2 where the CPU has it (C kernels in the COpenBLAS shim,
/// compiled with target attributes) and as plain Swift loops elsewhere. Each fast path computes
/// exactly what its `reference…` loop computes, bit for bit (tested), so the choice of path never
/// changes a result: DeMo's apply stays bit-identical across peers on different CPUs.
///
/// `MURMUR_VECTOR_KERNELS=swift` in the environment forces the Swift loops (for comparisons).
public enum VectorKernels {
    /// Whether the AVX2 paths are used (the CPU and OS support AVX2 + FMA, and they are not
    /// switched off).
    public static let avx2: Bool = {
        if let v = getenv("MURMUR_VECTOR_KERNELS"), String(cString: v) == "swift" { return false }
        return murmur_cpu_has_avx2_fma() != 0
    }()

    /// `r[i] = fma(g[i], lr, r[i] · decay)` for `i < n` (DeMo's momentum: one float multiply by β,
    /// then a fused multiply-add of the gradient with lr, as the reference).
    public static func momentum(_ r: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, decay: Float, lr: Float, count n: Int) {
        if avx2 { murmur_momentum_avx2(r, g, decay, lr, n) } else { referenceMomentum(r, g, decay: decay, lr: lr, count: n) }
    }

    public static func referenceMomentum(_ r: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, decay: Float, lr: Float, count n: Int) {
        for i in 0..<n { r[i] = (r[i] * decay).addingProduct(g[i], lr) }
    }

    /// The first `i < n` with `|x[i]| > t`, or `n`.
    public static func firstAbsAbove(_ x: UnsafePointer<Float>, count n: Int, _ t: Float) -> Int {
        if avx2 { return murmur_first_abs_above_avx2(x, n, t) }
        return referenceFirstAbsAbove(x, count: n, t)
    }

    public static func referenceFirstAbsAbove(_ x: UnsafePointer<Float>, count n: Int, _ t: Float) -> Int {
        for i in 0..<n where abs(x[i]) > t { return i }
        return n
    }

    /// `max |x[i]|` over `i < n` (0 when `n == 0`; for finite inputs).
    public static func maxAbs(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        if avx2 { return murmur_max_abs_avx2(x, n) }
        return referenceMaxAbs(x, count: n)
    }

    public static func referenceMaxAbs(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var m: Float = 0
        for i in 0..<n { let a = abs(x[i]); if a > m { m = a } }
        return m
    }

    /// `out[h·ld + w] = Σ_g cols[g][h] · rows[g][w]` for `h < n1`, `w < n2`, accumulated from 0 in
    /// `g` order with separate multiplies and adds: `((0 + c0·r0) + c1·r1) + …`. Returns false
    /// (and writes nothing) when there is no vector path; the caller then runs its own loop.
    public static func rankUpdate(_ out: UnsafeMutablePointer<Float>, ld: Int, n1: Int, n2: Int, terms: Int,
                                  cols: UnsafePointer<UnsafePointer<Float>>, rows: UnsafePointer<UnsafePointer<Float>>) -> Bool {
        guard avx2 else { return false }
        cols.withMemoryRebound(to: Optional<UnsafePointer<Float>>.self, capacity: terms) { c in
            rows.withMemoryRebound(to: Optional<UnsafePointer<Float>>.self, capacity: terms) { r in
                murmur_rank_update_avx2(out, ld, n1, n2, terms, c, r)
            }
        }
        return true
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
