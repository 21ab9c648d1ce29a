import Testing
@_spi(DeMoInternals) @testable import DeMo
import Tensors

/// The fast kernels of DeMo against their references, bit for bit: `apply` must give the same bits
/// on every peer, so a faster kernel may only reorganise loads and stores, never the arithmetic.
@Suite struct FastKernelTests {
    /// Register-blocked `rankUpdate` against `rankUpdateReference`, through `SparseIDCT.decode`, on
    /// every chunk shape the plans produce (including non-multiples of 8 and 32) and on sparse,
    /// row-heavy, column-heavy, empty and full coefficient sets.
    @Test(arguments: [(64, 64), (48, 64), (1, 64), (50, 35), (16, 16), (64, 1), (29, 60), (3, 40)])
    func sparseIDCTMatchesReference(n1: Int, n2: Int) {
        var rng = SeededRNG(seed: UInt64(n1 * 1000 + n2))
        let total = n1 * n2
        var slow = SparseIDCT(rowBasis: DCTBasis(n: n1), colBasis: DCTBasis(n: n2))
        slow.kernel = .reference
        var vector = slow, swift = slow
        vector.kernel = .vector
        swift.kernel = .swiftSIMD
        let ld = n2 + 3  // a row stride wider than the chunk, as inside a band
        for nnz in [0, 1, 5, min(32, total), min(100, total), total] {
            for pattern in 0..<3 {
                // pattern 0: random slots; 1: few rows (nb < nd); 2: few columns (nb > nd).
                var slots = Set<Int>()
                while slots.count < nnz {
                    let r = Int(rng.next() % UInt64(total))
                    switch pattern {
                    case 1: slots.insert((r % min(3, n1)) * n2 + (r / n1) % n2)
                    case 2: slots.insert(((r / n2) % n1) * n2 + r % min(3, n2))
                    default: slots.insert(r)
                    }
                    if pattern != 0 && slots.count >= min(nnz, (pattern == 1 ? min(3, n1) * n2 : n1 * min(3, n2))) { break }
                }
                let idx = slots.sorted().map { UInt32($0) }
                let val = idx.map { _ in rng.nextNormal() }
                var a = [Float](repeating: .nan, count: n1 * ld), b = a, c = a
                idx.withUnsafeBufferPointer { ip in
                    val.withUnsafeBufferPointer { vp in
                        a.withUnsafeMutableBufferPointer {
                            vector.decode(idx: ip.baseAddress!, val: vp.baseAddress!, nnz: idx.count, into: $0.baseAddress!, ld: ld)
                        }
                        c.withUnsafeMutableBufferPointer {
                            swift.decode(idx: ip.baseAddress!, val: vp.baseAddress!, nnz: idx.count, into: $0.baseAddress!, ld: ld)
                        }
                        b.withUnsafeMutableBufferPointer {
                            slow.decode(idx: ip.baseAddress!, val: vp.baseAddress!, nnz: idx.count, into: $0.baseAddress!, ld: ld)
                        }
                    }
                }
                #expect(mismatches(a, b) == 0, "vector: \(n1)x\(n2) nnz \(idx.count) pattern \(pattern)")
                #expect(mismatches(c, b) == 0, "swift SIMD: \(n1)x\(n2) nnz \(idx.count) pattern \(pattern)")
                // Outside the chunk nothing is written.
                #expect((0..<n1).allSatisfy { h in (n2..<ld).allSatisfy { a[h * ld + $0].isNaN && c[h * ld + $0].isNaN } })
            }
        }
    }

    /// A dense check of the sparse IDCT against the Double reference transform.
    @Test func sparseIDCTMatchesNaiveInverse() {
        let layout = ParameterLayout([(name: "w", shape: [128, 96])])
        let plan = DeMoPlan(layout: layout, chunk: 64, topk: 32).tensors[0]
        let tr = ChunkTransform(plan: plan)
        var rng = SeededRNG(seed: 9)
        let dense = (0..<plan.count).map { _ in rng.nextNormal() }
        var idx = [UInt32](repeating: 0, count: plan.sentCount), val = [Float](repeating: 0, count: plan.sentCount)
        dense.withUnsafeBufferPointer { d in
            idx.withUnsafeMutableBufferPointer { ib in
                val.withUnsafeMutableBufferPointer { vb in TopK.select(d.baseAddress!, plan: plan, indices: ib.baseAddress!, values: vb.baseAddress!) }
            }
        }
        // The selected coefficients as a dense tensor-layout array, inverted by the reference.
        var sparse = [Float](repeating: 0, count: plan.count)
        for c in 0..<plan.chunkCount {
            let y = c / plan.gridCols, x = c % plan.gridCols
            for i in 0..<plan.k {
                let f = Int(idx[c * plan.k + i])
                sparse[(y * plan.chunkRows + f / plan.chunkCols) * plan.cols + x * plan.chunkCols + f % plan.chunkCols] = val[c * plan.k + i]
            }
        }
        let want = NaiveDCT.transform(sparse, plan: plan, inverse: true)
        var got = [Float](repeating: 0, count: plan.count)
        got.withUnsafeMutableBufferPointer { DeMoOptimizer.sparseDecode(plan, tr, idx, val, into: $0.baseAddress!) }
        let scale = want.map { abs($0) }.max()!
        #expect((0..<plan.count).filter { abs(got[$0] - want[$0]) > 1e-5 * scale }.isEmpty)
    }

    /// Top-k with the row-maxima floor (chunks with at least k rows) against a brute-force sort by
    /// (|v| descending, index ascending), with many ties, a constant chunk and signed zeros.
    @Test(arguments: [1, 7, 32, 64])
    func topKWithFloorMatchesBruteForce(k: Int) {
        let shape = [128, 192]
        var e = randomFloats(shape[0] * shape[1], seed: 123 + UInt64(k)).map { ($0 * 4).rounded() / 4 }
        for r in 64..<128 { for c in 0..<64 { e[r * 192 + c] = r % 2 == 0 ? 0.5 : -0.5 } }  // one constant chunk
        for c in 64..<128 { e[c] = -0.0 }
        let plan = DeMoTensorPlan(name: "t", shape: shape, offset: 0, targetChunk: 64, topk: k)
        var idx = [UInt32](repeating: 0, count: plan.sentCount), val = [Float](repeating: 0, count: plan.sentCount)
        e.withUnsafeBufferPointer { ep in idx.withUnsafeMutableBufferPointer { ip in val.withUnsafeMutableBufferPointer { vp in
            TopK.select(ep.baseAddress!, plan: plan, indices: ip.baseAddress!, values: vp.baseAddress!)
        } } }
        var c = 0, bad = 0
        for y in 0..<plan.gridRows { for x in 0..<plan.gridCols {
            var entries: [(Int, Float)] = []
            for b in 0..<plan.chunkRows { for d in 0..<plan.chunkCols {
                entries.append((b * plan.chunkCols + d, e[(y * plan.chunkRows + b) * plan.cols + x * plan.chunkCols + d]))
            } }
            let best = entries.sorted { abs($0.1) != abs($1.1) ? abs($0.1) > abs($1.1) : $0.0 < $1.0 }
                .prefix(plan.k).sorted { $0.0 < $1.0 }
            if Array(idx[(c * plan.k)..<((c + 1) * plan.k)]) != best.map({ UInt32($0.0) }) { bad += 1 }
            if mismatches(Array(val[(c * plan.k)..<((c + 1) * plan.k)]), best.map(\.1)) != 0 { bad += 1 }
            c += 1
        } }
        #expect(bad == 0)
    }

    /// Preparing a tensor's bands on several threads gives the same payload and residual bits as
    /// on one, step after step.
    @Test(arguments: [DeMoValueFormat.f32, .bf16, .int8])
    func threadedPrepareMatchesSerial(format: DeMoValueFormat) throws {
        let layout = ParameterLayout([(name: "big", shape: [256, 192]), (name: "b", shape: [192]), (name: "odd", shape: [67, 50])])
        let config = DeMoConfig(decay: 0.9, topk: 8, chunk: 64, valueFormat: format)
        var serial = try DeMoOptimizer(layout: layout, config: config), threaded = serial
        for step in 0..<3 {
            let g = randomFloats(layout.totalCount, seed: 70 + UInt64(step))
            let a = try g.withUnsafeBufferPointer { try serial.prepareTraced(gradients: $0, lr: 0.01, trace: false, threads: 1) }
            let b = try g.withUnsafeBufferPointer { try threaded.prepareTraced(gradients: $0, lr: 0.01, trace: false, threads: 3) }
            for t in layout.slots.indices {
                let pa = a.payload.tensors[t], pb = b.payload.tensors[t]
                #expect(pa.indices == pb.indices, "step \(step) tensor \(t): indices differ")
                #expect(mismatches(pa.values, pb.values) == 0, "step \(step) tensor \(t): values differ")
                #expect(mismatches(pa.scales, pb.scales) == 0, "step \(step) tensor \(t): scales differ")
            }
            #expect(mismatches(serial.residual, threaded.residual) == 0, "step \(step): residuals differ")
        }
    }
}

/// Number of positions where two arrays differ bitwise (NaN compared by bits too), or `Int.max`
/// when their lengths differ.
func mismatches(_ a: [Float], _ b: [Float]) -> Int {
    guard a.count == b.count else { return .max }
    return zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
}
