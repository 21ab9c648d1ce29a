import Testing
@testable import Tensors

/// The AVX2 kernels against their Swift references, bit for bit (on a CPU without AVX2 both sides
/// run the reference and the tests pass trivially; `avx2` says which).
@Suite struct VectorKernelTests {
    static func floats(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SeededRNG(seed: seed)
        return (0..<n).map { _ in rng.nextNormal() * scale }
    }

    @Test(arguments: [0, 1, 7, 8, 9, 63, 4096, 4099])
    func momentumMatchesReference(n: Int) {
        let g = Self.floats(n, seed: 1, scale: 0.01)
        var fast = Self.floats(n, seed: 2, scale: 1e-3), slow = fast
        for (decay, lr) in [(Float(0.999), Float(4e-4)), (0.9, 0.5), (0, 1), (0.5, 0)] {
            g.withUnsafeBufferPointer { gp in
                fast.withUnsafeMutableBufferPointer { VectorKernels.momentum($0.baseAddress!, gp.baseAddress!, decay: decay, lr: lr, count: n) }
                slow.withUnsafeMutableBufferPointer { VectorKernels.referenceMomentum($0.baseAddress!, gp.baseAddress!, decay: decay, lr: lr, count: n) }
            }
            #expect(zip(fast, slow).allSatisfy { $0.bitPattern == $1.bitPattern }, "decay \(decay) lr \(lr)")
        }
    }

    @Test func momentumIsOneFusedRounding() {
        // 1 + 2^-23 squared needs the fused form: the unfused product rounds the 2^-46 term away.
        let x: Float = 1 + .ulpOfOne
        var r: [Float] = Array(repeating: -1, count: 9)
        let g = [Float](repeating: x, count: 9)
        g.withUnsafeBufferPointer { gp in
            r.withUnsafeMutableBufferPointer { VectorKernels.momentum($0.baseAddress!, gp.baseAddress!, decay: 1, lr: x, count: 9) }
        }
        #expect(r.allSatisfy { $0 == (-1 as Float).addingProduct(x, x) })
        #expect(r[0] != x * x - 1 || (-1 as Float).addingProduct(x, x) == x * x - 1)
    }

    @Test func firstAbsAboveMatchesReference() {
        var x = Self.floats(1000, seed: 3)
        x[500] = -.infinity
        x[10] = -0.0
        x.withUnsafeBufferPointer { p in
            for t: Float in [0, 0.5, 1, 2, 3, 3.5, .infinity] {
                for start in [0, 1, 13, 16, 999] {
                    let n = 1000 - start
                    #expect(VectorKernels.firstAbsAbove(p.baseAddress! + start, count: n, t)
                        == VectorKernels.referenceFirstAbsAbove(p.baseAddress! + start, count: n, t), "t \(t) start \(start)")
                }
            }
            #expect(VectorKernels.firstAbsAbove(p.baseAddress!, count: 0, 0) == 0)
        }
    }

    @Test func maxAbsMatchesReference() {
        let x = Self.floats(1000, seed: 6)
        x.withUnsafeBufferPointer { p in
            for (start, n) in [(0, 0), (0, 1), (3, 15), (0, 16), (5, 64), (0, 1000), (999, 1)] {
                #expect(VectorKernels.maxAbs(p.baseAddress! + start, count: n).bitPattern
                    == VectorKernels.referenceMaxAbs(p.baseAddress! + start, count: n).bitPattern, "\(start) \(n)")
            }
        }
    }

    @Test func rankUpdateMatchesScalarOrder() {
        for (n1, n2, terms) in [(64, 64, 25), (3, 40, 1), (48, 35, 7), (1, 8, 0), (5, 33, 4)] {
            let colData = Self.floats(max(1, terms * n1), seed: 4), rowData = Self.floats(max(1, terms * n2), seed: 5)
            let ld = n2 + 2
            var out = [Float](repeating: .nan, count: n1 * ld)
            var want = out
            for h in 0..<n1 { for w in 0..<n2 {
                var a: Float = 0
                for g in 0..<terms { a = a + colData[g * n1 + h] * rowData[g * n2 + w] }
                want[h * ld + w] = a
            } }
            let used = colData.withUnsafeBufferPointer { cb in
                rowData.withUnsafeBufferPointer { rb in
                    let cols = (0..<terms).map { cb.baseAddress! + $0 * n1 }, rows = (0..<terms).map { rb.baseAddress! + $0 * n2 }
                    return out.withUnsafeMutableBufferPointer { o in
                        VectorKernels.rankUpdate(o.baseAddress!, ld: ld, n1: n1, n2: n2, terms: terms, cols: cols, rows: rows)
                    }
                }
            }
            #expect(used == VectorKernels.avx2)
            if used { #expect(zip(out, want).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(n1)x\(n2) terms \(terms)") }
        }
    }
}
