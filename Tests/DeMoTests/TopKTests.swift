import Testing
@_spi(DeMoInternals) @testable import DeMo

@Suite struct TopKTests {
    func select(_ e: [Float], shape: [Int], chunk: Int, k: Int) -> ([UInt32], [Float], DeMoTensorPlan) {
        let plan = DeMoTensorPlan(name: "t", shape: shape, offset: 0, targetChunk: chunk, topk: k)
        var idx = [UInt32](repeating: 0, count: plan.sentCount), val = [Float](repeating: 0, count: plan.sentCount)
        e.withUnsafeBufferPointer { ep in idx.withUnsafeMutableBufferPointer { ip in val.withUnsafeMutableBufferPointer { vp in
            TopK.select(ep.baseAddress!, plan: plan, indices: ip.baseAddress!, values: vp.baseAddress!)
        } } }
        return (idx, val, plan)
    }

    @Test func tiesGoToLowerIndex() {
        // |v| ties everywhere: magnitude 1 with alternating signs, and a clear winner at 6.
        var e: [Float] = [1, -1, 1, -1, 0.5, -0.0, -2, 1]
        var (idx, val, _) = select(e, shape: [8], chunk: 8, k: 3)
        #expect(idx == [0, 1, 6])
        #expect(val == [1, -1, -2])
        e = [0, -0.0, 0, 0]
        (idx, _, _) = select(e, shape: [4], chunk: 4, k: 2)
        #expect(idx == [0, 1])
    }

    /// Against a brute-force sort by (|v| desc, index asc), on data with many ties, 2-D chunks.
    @Test func matchesBruteForceWithTies() {
        let shape = [12, 20]
        let raw = randomFloats(240, seed: 99)
        let e = raw.map { ($0 * 2).rounded() / 2 }  // only a few distinct magnitudes
        let (idx, val, plan) = select(e, shape: shape, chunk: 4, k: 5)
        var c = 0
        for y in 0..<plan.gridRows { for x in 0..<plan.gridCols {
            var entries: [(Int, Float)] = []
            for b in 0..<plan.chunkRows { for d in 0..<plan.chunkCols {
                entries.append((b * plan.chunkCols + d, e[(y * plan.chunkRows + b) * plan.cols + x * plan.chunkCols + d]))
            } }
            let best = entries.sorted { abs($0.1) != abs($1.1) ? abs($0.1) > abs($1.1) : $0.0 < $1.0 }
                .prefix(plan.k).sorted { $0.0 < $1.0 }
            #expect(Array(idx[(c * plan.k)..<((c + 1) * plan.k)]) == best.map { UInt32($0.0) })
            #expect(Array(val[(c * plan.k)..<((c + 1) * plan.k)]) == best.map(\.1))
            c += 1
        } }
    }

    @Test func kClampedToChunk() {
        let (idx, _, plan) = select([3, -1, 2], shape: [3, 1], chunk: 16, k: 4)
        #expect(plan.k == 3)
        #expect(idx == [0, 1, 2])
    }
}
