import Tensors

/// Inverse DCT of a sparse chunk, written with plain loops.
///
/// A chunk with non-zero coefficients `(b_i, d_i, v_i)` decodes to
/// `out[h][w] = Σ_i v_i · C1[b_i][h] · C2[d_i][w]`, a sum of outer products of basis rows — no dense
/// scatter and no full transform. Coefficients sharing a row frequency `b` are first folded into
/// one row vector `U_b = Σ v_i·C2[d_i]`, then `out = Σ_b C1[b]ᵀ ⊗ U_b` (or the same by columns when
/// there are fewer distinct `d`), so the cost is about `min(#b, #d) · n1 · n2` multiply-adds. The
/// rank-1 updates are applied four at a time so each output row is loaded and stored once per
/// four terms.
///
/// Deterministic by construction: no BLAS, and the order of every floating-point operation depends
/// only on the coefficient list (which callers keep sorted ascending). This is what lets peers that
/// apply the same contributions end bit-identical.
@_spi(DeMoInternals)
public struct SparseIDCT {
    let n1: Int, n2: Int
    let c1: [Float], c2: [Float]
    /// Scratch: the folded vectors (at most n1·n2 floats), their basis partner per term, and a
    /// mark per column frequency.
    var folded: [Float]
    var partner: [Int]
    var seenCol: [Bool]
    /// Which rank-update kernel `decode` runs (all give the same bits; the choice is for tests).
    public enum Kernel: Sendable, CaseIterable {
        /// AVX2 (`VectorKernels.rankUpdate`) where the CPU has it, else `swiftSIMD`.
        case vector
        /// The register-blocked Swift `SIMD8` loop.
        case swiftSIMD
        /// `rankUpdateReference`.
        case reference
    }
    public var kernel = Kernel.vector

    public init(rowBasis: DCTBasis, colBasis: DCTBasis) {
        n1 = rowBasis.n; n2 = colBasis.n
        c1 = rowBasis.c; c2 = colBasis.c
        folded = [Float](repeating: 0, count: n1 * n2)
        partner = [Int](repeating: 0, count: max(n1, n2))
        seenCol = [Bool](repeating: false, count: n2)
    }

    /// Overwrites the `n1 × n2` chunk at `out` (row stride `ld`) with the inverse DCT of the
    /// `nnz` coefficients `idx`/`val` (flat index `b·n2 + d`, strictly ascending, `< n1·n2`).
    public mutating func decode(idx: UnsafePointer<UInt32>, val: UnsafePointer<Float>, nnz: Int,
                                into out: UnsafeMutablePointer<Float>, ld: Int) {
        let n1 = self.n1, n2 = self.n2
        if nnz == 0 {
            for h in 0..<n1 { (out + h * ld).update(repeating: 0, count: n2) }
            return
        }
        c1.withUnsafeBufferPointer { c1b in
            c2.withUnsafeBufferPointer { c2b in
                folded.withUnsafeMutableBufferPointer { fb in
                    partner.withUnsafeMutableBufferPointer { pb in
                        seenCol.withUnsafeMutableBufferPointer { sb in
                            let c1 = c1b.baseAddress!, c2 = c2b.baseAddress!
                            let f = fb.baseAddress!, part = pb.baseAddress!, seen = sb.baseAddress!
                            // Count distinct row and column frequencies to pick the cheaper grouping.
                            var nb = 1
                            for i in 1..<nnz where Int(idx[i]) / n2 != Int(idx[i - 1]) / n2 { nb += 1 }
                            var nd = 0
                            for i in 0..<nnz { let d = Int(idx[i]) % n2; if !seen[d] { seen[d] = true; nd += 1 } }
                            if nb <= nd {
                                for i in 0..<nnz { seen[Int(idx[i]) % n2] = false }
                                // Term g: column vector C1[b_g] (length n1) ⊗ row vector U_g (length n2).
                                var g = -1, lastB = -1
                                for i in 0..<nnz {
                                    let b = Int(idx[i]) / n2, d = Int(idx[i]) % n2, v = val[i]
                                    if b != lastB {
                                        g += 1; lastB = b; part[g] = b
                                        let u = f + g * n2, r = c2 + d * n2
                                        for w in 0..<n2 { u[w] = v * r[w] }
                                    } else {
                                        let u = f + g * n2, r = c2 + d * n2
                                        for w in 0..<n2 { u[w] += v * r[w] }
                                    }
                                }
                                if kernel == .reference {
                                    Self.rankUpdateReference(terms: nb, n1: n1, n2: n2, out: out, ld: ld,
                                                             col: { c1 + part[$0] * n1 }, row: { UnsafePointer(f + $0 * n2) })
                                } else {
                                    Self.rankUpdate(terms: nb, n1: n1, n2: n2, out: out, ld: ld, vector: kernel == .vector,
                                                    col: { c1 + part[$0] * n1 }, row: { UnsafePointer(f + $0 * n2) })
                                }
                            } else {
                                // Term g: column vector V_g = Σ v·C1[b] over the d_g column ⊗ C2[d_g].
                                var g = 0
                                for d in 0..<n2 where seen[d] {
                                    seen[d] = false
                                    part[g] = d
                                    let vcol = f + g * n1
                                    vcol.update(repeating: 0, count: n1)
                                    for i in 0..<nnz where Int(idx[i]) % n2 == d {
                                        let r = c1 + (Int(idx[i]) / n2) * n1, v = val[i]
                                        for h in 0..<n1 { vcol[h] += v * r[h] }
                                    }
                                    g += 1
                                }
                                if kernel == .reference {
                                    Self.rankUpdateReference(terms: nd, n1: n1, n2: n2, out: out, ld: ld,
                                                             col: { UnsafePointer(f + $0 * n1) }, row: { c2 + part[$0] * n2 })
                                } else {
                                    Self.rankUpdate(terms: nd, n1: n1, n2: n2, out: out, ld: ld, vector: kernel == .vector,
                                                    col: { UnsafePointer(f + $0 * n1) }, row: { c2 + part[$0] * n2 })
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `out = Σ_g col(g) ⊗ row(g)` (`col` has n1 entries, `row` n2), accumulated term after term
    /// in `g` order for every element: `(((0 + a0·r0) + a1·r1) + a2·r2) + …` — the same operations
    /// in the same order as `rankUpdateReference`, so the two agree bit for bit (tested).
    ///
    /// With AVX2 the C kernel `murmur_rank_update_avx2` does the same with 8-wide vectors.
    /// Register-blocked: for each output row, 32 columns are held in four `SIMD8` accumulators while
    /// all terms stream past, so each output element is stored once instead of once per four terms.
    /// Separate multiply and add (no fused multiply-add) on every machine.
    @inline(__always)
    static func rankUpdate(terms: Int, n1: Int, n2: Int, out: UnsafeMutablePointer<Float>, ld: Int, vector: Bool,
                           col: (Int) -> UnsafePointer<Float>, row: (Int) -> UnsafePointer<Float>) {
        if terms == 0 {
            for h in 0..<n1 { (out + h * ld).update(repeating: 0, count: n2) }
            return
        }
        // Gather the term pointers once (at most max(n1, n2) terms).
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 2 * terms) { buf in
            let cols = buf.baseAddress!, rows = buf.baseAddress! + terms
            for g in 0..<terms { cols[g] = col(g); rows[g] = row(g) }
            if vector && VectorKernels.rankUpdate(out, ld: ld, n1: n1, n2: n2, terms: terms,
                                                  cols: UnsafePointer(cols), rows: UnsafePointer(rows)) { return }
            for h in 0..<n1 {
                let o = out + h * ld
                var w = 0
                while w + 32 <= n2 {
                    var a0 = SIMD8<Float>(repeating: 0), a1 = a0, a2 = a0, a3 = a0
                    for g in 0..<terms {
                        let s = SIMD8<Float>(repeating: cols[g][h])
                        let r = rows[g] + w
                        a0 = a0 + s * load8(r)
                        a1 = a1 + s * load8(r + 8)
                        a2 = a2 + s * load8(r + 16)
                        a3 = a3 + s * load8(r + 24)
                    }
                    store8(a0, o + w); store8(a1, o + w + 8); store8(a2, o + w + 16); store8(a3, o + w + 24)
                    w += 32
                }
                while w + 8 <= n2 {
                    var a0 = SIMD8<Float>(repeating: 0)
                    for g in 0..<terms { a0 = a0 + SIMD8<Float>(repeating: cols[g][h]) * load8(rows[g] + w) }
                    store8(a0, o + w)
                    w += 8
                }
                while w < n2 {
                    var a: Float = 0
                    for g in 0..<terms { a = a + cols[g][h] * rows[g][w] }
                    o[w] = a
                    w += 1
                }
            }
        }
    }

    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// The straightforward form of `rankUpdate` (four terms per pass over the output, in a fixed
    /// order: `((((o + a0·r0) + a1·r1) + a2·r2) + a3·r3)`), kept as its reference.
    static func rankUpdateReference(terms: Int, n1: Int, n2: Int, out: UnsafeMutablePointer<Float>, ld: Int,
                                    col: (Int) -> UnsafePointer<Float>, row: (Int) -> UnsafePointer<Float>) {
        for h in 0..<n1 { (out + h * ld).update(repeating: 0, count: n2) }
        var g = 0
        while g + 4 <= terms {
            let a0 = col(g), a1 = col(g + 1), a2 = col(g + 2), a3 = col(g + 3)
            let r0 = row(g), r1 = row(g + 1), r2 = row(g + 2), r3 = row(g + 3)
            for h in 0..<n1 {
                let s0 = a0[h], s1 = a1[h], s2 = a2[h], s3 = a3[h]
                let o = out + h * ld
                for w in 0..<n2 { o[w] = o[w] + s0 * r0[w] + s1 * r1[w] + s2 * r2[w] + s3 * r3[w] }
            }
            g += 4
        }
        while g < terms {
            let a = col(g), r = row(g)
            for h in 0..<n1 {
                let s = a[h]
                let o = out + h * ld
                for w in 0..<n2 { o[w] = o[w] + s * r[w] }
            }
            g += 1
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
}
