import Foundation
import Tensors

/// The orthonormal DCT-II matrix of size `n`, `c[k*n + j] = s_k·cos(π(2j+1)k / 2n)` with
/// `s_0 = √(1/n)`, `s_k = √(2/n)`: rows are frequencies. Evaluated in Double and rounded to Float
/// (the reference builds it through an FFT in float32; both agree within 8e-8).
///
/// Forward transform of a vector x: `C·x`; inverse: `Cᵀ·X`. Immutable value, safe to share.
public struct DCTBasis: Sendable {
    public let n: Int
    /// Row-major `n × n`.
    public let c: [Float]

    public init(n: Int) {
        precondition(n >= 1, "DCT size must be >= 1")
        self.n = n
        var m = [Float](repeating: 0, count: n * n)
        for k in 0..<n {
            let s = (k == 0 ? 1.0 : 2.0) / Double(n)
            for j in 0..<n {
                m[k * n + j] = Float(s.squareRoot() * cos(Double.pi * Double(2 * j + 1) * Double(k) / Double(2 * n)))
            }
        }
        c = m
    }

    /// The identity of size `n` in place of the DCT (`transform: none`): the "coefficients" are
    /// then the chunk's own entries, and every transform and inverse is an exact copy (products
    /// with 0 and 1 only).
    public init(identity n: Int) {
        precondition(n >= 1, "basis size must be >= 1")
        self.n = n
        var m = [Float](repeating: 0, count: n * n)
        for k in 0..<n { m[k * n + k] = 1 }
        c = m
    }
}

/// The per-chunk 2-D DCT of one tensor (see `DeMoTensorPlan` for the 2-D view and chunking).
///
/// "Tensor layout": every dense coefficient array here has the tensor's own `rows × cols` shape;
/// coefficient `(b, d)` of chunk `(y, x)` sits at row `y·n1 + b`, column `x·n2 + d`. This keeps
/// both transforms as a handful of large `sgemm` calls and no reshuffling; `chunkOrder` converts to
/// the reference's `[Y, X, n1, n2]` order when needed.
///
/// Not thread-safe only in the sense that callers pass their own output/scratch buffers; the value
/// itself is immutable.
@_spi(DeMoInternals)
public struct ChunkTransform: Sendable {
    public let plan: DeMoTensorPlan
    public let rowBasis: DCTBasis
    public let colBasis: DCTBasis

    public init(plan: DeMoTensorPlan, bases: [Int: DCTBasis]? = nil) {
        self.plan = plan
        rowBasis = bases?[plan.chunkRows] ?? DCTBasis(n: plan.chunkRows)
        colBasis = bases?[plan.chunkCols] ?? DCTBasis(n: plan.chunkCols)
    }

    /// Floats in one band of chunks (`chunkRows` full rows of the 2-D view).
    public var bandCount: Int { plan.chunkRows * plan.cols }

    /// Forward DCT of every chunk: `E_chunk = C1 · X_chunk · C2ᵀ`. `x` and `out` hold `plan.count`
    /// floats, `scratch` `bandCount`; `out` may not alias `x`.
    public func encode(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                       scratch: UnsafeMutablePointer<Float>) {
        for y in 0..<plan.gridRows {
            encodeBand(x + y * bandCount, into: out + y * bandCount, scratch: scratch)
        }
    }

    /// Forward DCT of the chunks of one band (`bandCount` floats each; `scratch` too).
    /// Working band by band keeps the data in cache between the two passes.
    public func encodeBand(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                           scratch: UnsafeMutablePointer<Float>) {
        let n1 = plan.chunkRows, n2 = plan.chunkCols, cols = plan.cols
        // Columns first: every run of n2 consecutive elements is one chunk row, so the band is a
        // (bandCount/n2) × n2 matrix times C2ᵀ — one call.
        // Both products accumulate (beta 1) into memset-zeroed outputs: OpenBLAS implements beta 0
        // as a separate scalar pass over C, slower than memset.
        let colTarget = n1 == 1 ? out : scratch
        colTarget.update(repeating: 0, count: bandCount)
        colBasis.c.withUnsafeBufferPointer { c2 in
            BLAS.sgemm(.none, .transposed, m: bandCount / n2, n: n2, k: n2,
                       a: x, lda: n2, b: c2.baseAddress!, ldb: n2, beta: 1, c: colTarget, ldc: n2)
        }
        if n1 == 1 { return }
        // Rows: the band is C1 · band (n1 × cols).
        out.update(repeating: 0, count: bandCount)
        rowBasis.c.withUnsafeBufferPointer { c1 in
            BLAS.sgemm(m: n1, n: cols, k: n1, a: c1.baseAddress!, lda: n1,
                       b: scratch, ldb: cols, beta: 1, c: out, ldc: cols)
        }
    }

    /// Inverse DCT of every chunk of a dense coefficient array: `X_chunk = C1ᵀ · E_chunk · C2`.
    public func decodeDense(_ e: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                            scratch: UnsafeMutablePointer<Float>) {
        let n1 = plan.chunkRows, n2 = plan.chunkCols, cols = plan.cols
        for y in 0..<plan.gridRows {
            let eb = e + y * bandCount, ob = out + y * bandCount
            let colTarget = n1 == 1 ? ob : scratch
            colBasis.c.withUnsafeBufferPointer { c2 in
                BLAS.sgemm(m: bandCount / n2, n: n2, k: n2,
                           a: eb, lda: n2, b: c2.baseAddress!, ldb: n2, c: colTarget, ldc: n2)
            }
            if n1 == 1 { continue }
            rowBasis.c.withUnsafeBufferPointer { c1 in
                BLAS.sgemm(.transposed, .none, m: n1, n: cols, k: n1, a: c1.baseAddress!, lda: n1,
                           b: scratch, ldb: cols, c: ob, ldc: cols)
            }
        }
    }

    /// Converts a tensor-layout array to the reference's chunk order `[Y, X, n1, n2]`
    /// (for 1-D tensors that is `[X, n2]`).
    public func chunkOrder(_ a: [Float]) -> [Float] {
        let n1 = plan.chunkRows, n2 = plan.chunkCols, cols = plan.cols
        var r = [Float](); r.reserveCapacity(a.count)
        for y in 0..<plan.gridRows { for x in 0..<plan.gridCols {
            for b in 0..<n1 { for d in 0..<n2 { r.append(a[(y * n1 + b) * cols + x * n2 + d]) } }
        } }
        return r
    }
}

/// Slow reference transforms (Double accumulation, closed-form basis, one loop nest per chunk),
/// used to test `ChunkTransform`. Same tensor layout conventions.
@_spi(DeMoInternals)
public enum NaiveDCT {
    static func basis(_ n: Int) -> [Double] {
        var m = [Double](repeating: 0, count: n * n)
        for k in 0..<n {
            let s = ((k == 0 ? 1.0 : 2.0) / Double(n)).squareRoot()
            for j in 0..<n { m[k * n + j] = s * cos(Double.pi * Double(2 * j + 1) * Double(k) / Double(2 * n)) }
        }
        return m
    }

    /// Forward per-chunk DCT (`inverse == false`) or its inverse, in tensor layout.
    public static func transform(_ x: [Float], plan: DeMoTensorPlan, inverse: Bool) -> [Float] {
        let n1 = plan.chunkRows, n2 = plan.chunkCols, cols = plan.cols
        let c1 = basis(n1), c2 = basis(n2)
        var out = [Float](repeating: 0, count: x.count)
        for y in 0..<plan.gridRows { for x0 in 0..<plan.gridCols {
            let base = y * n1 * cols + x0 * n2
            for b in 0..<n1 { for d in 0..<n2 {
                var acc = 0.0
                for h in 0..<n1 { for w in 0..<n2 {
                    // forward: Σ C1[b][h]·x[h][w]·C2[d][w]; inverse: Σ C1[h][b]·E[h][w]·C2[w][d].
                    let coef = inverse ? c1[h * n1 + b] * c2[w * n2 + d] : c1[b * n1 + h] * c2[d * n2 + w]
                    acc += coef * Double(x[base + h * cols + w])
                } }
                out[base + b * cols + d] = Float(acc)
            } }
        } }
        return out
    }
}
