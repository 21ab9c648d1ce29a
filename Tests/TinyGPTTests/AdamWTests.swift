import DeMo
import Testing

/// AdamW against values worked out by hand (in float64) from torch's update rule:
/// lr 0.1, wd 0.1, β 0.9/0.95, eps 1e-8, two steps.
@Suite struct AdamWTests {
    @Test func twoStepsMatchHandComputedValues() {
        let opt = AdamW(count: 5, config: .init(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1))
        // 5 elements so the vector body (4) and the scalar tail (1) both run.
        var p: [Float] = [1.0, -2.0, 0.5, 0.0, 1.0]
        let g1: [Float] = [0.5, -1e-3, 0.0, 2.0, 0.5]
        let g2: [Float] = [-0.25, -1e-3, 0.0, 1.0, -0.25]
        p.withUnsafeMutableBufferPointer { pp in g1.withUnsafeBufferPointer { opt.step(params: pp, grads: $0, lr: 0.1) } }
        // Step 1: m̂ = g, v̂ = g², so p = p·(1 − lr·wd) − lr·g/(|g| + eps).
        let want1: [Double] = [0.890000002, -1.88000099999, 0.495, -0.0999999995, 0.890000002]
        for i in 0..<5 { #expect(abs(Double(p[i]) - want1[i]) <= 1e-6, "step 1 element \(i)") }
        #expect(opt.t == 1)
        #expect(abs(opt.m[0] - 0.05) < 1e-7 && abs(opt.v[0] - 0.0125) < 1e-8)
        p.withUnsafeMutableBufferPointer { pp in g2.withUnsafeBufferPointer { opt.step(params: pp, grads: $0, lr: 0.1) } }
        // Step 2, element 0: m = 0.02, v = 0.015, m̂ = 0.02/0.19, v̂ = 0.015/0.0975.
        let want2: [Double] = [0.8542630578558273, -1.7612019899801001, 0.49005, -0.19292930573565653, 0.8542630578558273]
        for i in 0..<5 { #expect(abs(Double(p[i]) - want2[i]) <= 2e-6, "step 2 element \(i)") }
        #expect(opt.t == 2)
        #expect(abs(opt.m[3] - 0.28) < 1e-6 && abs(opt.v[3] - 0.24) < 1e-6)
    }

    @Test func stateCanBeRestored() {
        let a = AdamW(count: 3), b = AdamW(count: 3)
        var pa: [Float] = [1, 2, 3], pb = pa
        let g: [Float] = [0.1, -0.2, 0.3]
        for _ in 0..<3 { pa.withUnsafeMutableBufferPointer { p in g.withUnsafeBufferPointer { a.step(params: p, grads: $0, lr: 0.01) } } }
        // Copy the state into a fresh optimizer and the parameters into a fresh buffer: same next step.
        b.m = a.m; b.v = a.v; b.t = a.t
        pb = pa
        pa.withUnsafeMutableBufferPointer { p in g.withUnsafeBufferPointer { a.step(params: p, grads: $0, lr: 0.01) } }
        pb.withUnsafeMutableBufferPointer { p in g.withUnsafeBufferPointer { b.step(params: p, grads: $0, lr: 0.01) } }
        #expect(pa == pb)
    }

    @Test func threadedStepIsIdenticalToSerial() {
        let n = 100_003
        let serial = AdamW(count: n), threaded = AdamW(count: n)
        threaded.threads = 3
        var ps = (0..<n).map { Float($0 % 97) * 0.01 - 0.4 }, pt = ps
        let g = (0..<n).map { Float(($0 * 31) % 101) * 1e-3 - 0.05 }
        for _ in 0..<2 {
            ps.withUnsafeMutableBufferPointer { p in g.withUnsafeBufferPointer { serial.step(params: p, grads: $0, lr: 1e-3) } }
            pt.withUnsafeMutableBufferPointer { p in g.withUnsafeBufferPointer { threaded.step(params: p, grads: $0, lr: 1e-3) } }
        }
        #expect(ps == pt && serial.m == threaded.m && serial.v == threaded.v)
        #expect(ps != (0..<n).map { Float($0 % 97) * 0.01 - 0.4 })
    }
}
