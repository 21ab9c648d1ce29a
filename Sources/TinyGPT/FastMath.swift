/// Small vector-friendly math used by the hot kernels.
///
/// Float reductions (`s += x[i]`) are not auto-vectorized because reassociation changes rounding, so
/// the reductions here keep eight explicit partial sums in a `SIMD8<Float>`. `fastExp` is written with
/// plain arithmetic and bit operations (no calls, no trapping conversions) so loops calling it
/// auto-vectorize; `expf` from libm is a scalar call per element.
enum FastMath {
    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// Σ p[0..<n].
    @inline(__always)
    static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= n { acc += load8(p + i); i += 8 }
        var s = acc.sum()
        while i < n { s += p[i]; i += 1 }
        return s
    }

    /// Σ a[i]·b[i] over `0..<n`.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= n { acc += load8(a + i) * load8(b + i); i += 8 }
        var s = acc.sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// Σ (p[i] − c)² over `0..<n`.
    @inline(__always)
    static func sumSquaredDeviation(_ p: UnsafePointer<Float>, _ c: Float, _ n: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        let cv = SIMD8<Float>(repeating: c)
        var i = 0
        while i + 8 <= n { let d = load8(p + i) - cv; acc += d * d; i += 8 }
        var s = acc.sum()
        while i < n { let d = p[i] - c; s += d * d; i += 1 }
        return s
    }

    /// dst[i] += src[i] over `0..<n` (explicit vectors: the compiler will not vectorize through
    /// possibly aliasing pointers).
    @inline(__always)
    static func add(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { store8(load8(dst + i) + load8(src + i), dst + i); i += 8 }
        while i < n { dst[i] += src[i]; i += 1 }
    }

    /// max p[0..<n] (n ≥ 1; NaNs are not propagated reliably). Four scalar lanes of selects: the
    /// generic SIMD `max`/`pointwiseMax` are not inlined on the baseline x86-64 target.
    @inline(__always)
    static func max(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var m0 = p[0], m1 = p[0], m2 = p[0], m3 = p[0]
        var i = 0
        while i + 4 <= n {
            m0 = p[i] > m0 ? p[i] : m0
            m1 = p[i + 1] > m1 ? p[i + 1] : m1
            m2 = p[i + 2] > m2 ? p[i + 2] : m2
            m3 = p[i + 3] > m3 ? p[i + 3] : m3
            i += 4
        }
        while i < n { m0 = p[i] > m0 ? p[i] : m0; i += 1 }
        m0 = m1 > m0 ? m1 : m0
        m2 = m3 > m2 ? m3 : m2
        return m2 > m0 ? m2 : m0
    }

    /// eˣ to about 2 ulp (Cephes `expf` polynomial), inputs clamped to [-87.3, 88] so 2ⁿ (n in -126...127)
    /// stays a finite normal float. Branch-free so loops over it vectorize.
    @inline(__always)
    static func fastExp(_ x0: Float) -> Float {
        var x = x0 < -87.3 ? -87.3 : x0
        x = x > 88.0 ? 88.0 : x
        // x = n·ln2 + r with |r| ≤ ln2/2; ln2 split in two so n·ln2_hi is exact. Adding 1.5·2²³
        // rounds to the nearest integer and leaves it in the low mantissa bits (no floor call:
        // the baseline x86-64 target has no vector rounding instruction).
        let t = x * 1.442_695_04 + 12_582_912
        let n = t - 12_582_912
        var r = x - n * 0.693_359_375
        r = r + n * 2.121_944_4e-4
        let z = r * r
        var y: Float = 1.987_569_15e-4
        y = y * r + 1.398_199_950_7e-3
        y = y * r + 8.333_451_907_3e-3
        y = y * r + 4.166_579_589_4e-2
        y = y * r + 1.666_666_545_9e-1
        y = y * r + 5.000_000_120_1e-1
        y = y * z + r + 1
        // 2ⁿ built directly in the exponent field.
        let biased = t.bitPattern &- 0x4B40_0000 &+ 127
        let scale = Float(bitPattern: biased &<< 23)
        return y * scale
    }
}
