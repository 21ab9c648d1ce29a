/// Inverse DCT of a sparse chunk, written with plain loops.
///
/// A chunk with non-zero coefficients `(b_i, d_i, v_i)` decodes to
/// `out[h][w] = Σ_i v_i · C1[b_i][h] · C2[d_i][w]`, a sum of outer products of basis rows — no dense
/// scatter and no full transform. Coefficients sharing a row frequency `b` are first folded into
/// one row vector `U_b = Σ v_i·C2[d_i]`, then `out += C1[b]ᵀ ⊗ U_b` (or the same by columns when
/// there are fewer distinct `d`), so the cost is about `min(#b, #d) · n1 · n2` multiply-adds.
///
/// Deterministic by construction: no BLAS, and the order of every floating-point operation depends
/// only on the coefficient list (which callers keep sorted ascending). This is what lets peers that
/// apply the same contributions end bit-identical.
@_spi(DeMoInternals)
public struct SparseIDCT {
    let n1: Int, n2: Int
    let c1: [Float], c2: [Float]
    /// Scratch: one row (n2) or column (n1) accumulator, plus a mark per column frequency.
    var acc: [Float]
    var seenCol: [Bool]

    public init(rowBasis: DCTBasis, colBasis: DCTBasis) {
        n1 = rowBasis.n; n2 = colBasis.n
        c1 = rowBasis.c; c2 = colBasis.c
        acc = [Float](repeating: 0, count: max(n1, n2))
        seenCol = [Bool](repeating: false, count: n2)
    }

    /// Overwrites the `n1 × n2` chunk at `out` (row stride `ld`) with the inverse DCT of the
    /// `nnz` coefficients `idx`/`val` (flat index `b·n2 + d`, strictly ascending, `< n1·n2`).
    public mutating func decode(idx: UnsafePointer<UInt32>, val: UnsafePointer<Float>, nnz: Int,
                                into out: UnsafeMutablePointer<Float>, ld: Int) {
        let n1 = self.n1, n2 = self.n2
        for h in 0..<n1 { (out + h * ld).update(repeating: 0, count: n2) }
        if nnz == 0 { return }
        // Count distinct row and column frequencies to pick the cheaper grouping.
        var nb = 1
        var lastB = Int(idx[0]) / n2
        for i in 1..<nnz { let b = Int(idx[i]) / n2; if b != lastB { nb += 1; lastB = b } }
        var nd = 0
        seenCol.withUnsafeMutableBufferPointer { seen in
            for i in 0..<nnz { let d = Int(idx[i]) % n2; if !seen[d] { seen[d] = true; nd += 1 } }
        }
        c1.withUnsafeBufferPointer { c1p in
            c2.withUnsafeBufferPointer { c2p in
                acc.withUnsafeMutableBufferPointer { ap in
                    seenCol.withUnsafeMutableBufferPointer { seen in
                        let c1 = c1p.baseAddress!, c2 = c2p.baseAddress!, u = ap.baseAddress!
                        if nb <= nd {
                            Self.byRows(n1, n2, idx, val, nnz, c1, c2, u, out, ld)
                            for i in 0..<nnz { seen[Int(idx[i]) % n2] = false }
                        } else {
                            Self.byColumns(n1, n2, idx, val, nnz, c1, c2, u, seen.baseAddress!, out, ld)
                        }
                    }
                }
            }
        }
    }

    /// Decodes the `gridCols` chunks of one band (`k` coefficients each, chunk after chunk) into
    /// `out`, which points at the band's first element (row stride `plan.cols`).
    public mutating func decodeBand(_ plan: DeMoTensorPlan, idx: UnsafePointer<UInt32>, val: UnsafePointer<Float>,
                                    into out: UnsafeMutablePointer<Float>) {
        for x in 0..<plan.gridCols {
            decode(idx: idx + x * plan.k, val: val + x * plan.k, nnz: plan.k, into: out + x * plan.chunkCols, ld: plan.cols)
        }
    }

    /// Group by row frequency b (contiguous because the indices are ascending).
    @inline(__always)
    private static func byRows(_ n1: Int, _ n2: Int, _ idx: UnsafePointer<UInt32>, _ val: UnsafePointer<Float>, _ nnz: Int,
                        _ c1: UnsafePointer<Float>, _ c2: UnsafePointer<Float>, _ u: UnsafeMutablePointer<Float>,
                        _ out: UnsafeMutablePointer<Float>, _ ld: Int) {
        var i = 0
        while i < nnz {
            let b = Int(idx[i]) / n2
            u.update(repeating: 0, count: n2)
            while i < nnz && Int(idx[i]) / n2 == b {
                let d = Int(idx[i]) % n2, v = val[i]
                let basisRow = c2 + d * n2
                for w in 0..<n2 { u[w] += v * basisRow[w] }
                i += 1
            }
            for h in 0..<n1 {
                let c = c1[b * n1 + h]
                let row = out + h * ld
                for w in 0..<n2 { row[w] += c * u[w] }
            }
        }
    }

    /// Group by column frequency d, visiting distinct d in ascending order; `seen` marks the
    /// column frequencies still to visit and is left cleared.
    @inline(__always)
    private static func byColumns(_ n1: Int, _ n2: Int, _ idx: UnsafePointer<UInt32>, _ val: UnsafePointer<Float>, _ nnz: Int,
                           _ c1: UnsafePointer<Float>, _ c2: UnsafePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                           _ seen: UnsafeMutablePointer<Bool>, _ out: UnsafeMutablePointer<Float>, _ ld: Int) {
        for d in 0..<n2 where seen[d] {
            seen[d] = false
            v.update(repeating: 0, count: n1)
            for i in 0..<nnz where Int(idx[i]) % n2 == d {
                let b = Int(idx[i]) / n2, x = val[i]
                let basisRow = c1 + b * n1
                for h in 0..<n1 { v[h] += x * basisRow[h] }
            }
            let basisRow = c2 + d * n2
            for h in 0..<n1 {
                let c = v[h]
                let row = out + h * ld
                for w in 0..<n2 { row[w] += c * basisRow[w] }
            }
        }
    }
}
