import Foundation
import Tensors

/// AdamW with PyTorch's semantics (`torch.optim.AdamW`, non-amsgrad, non-fused), applied to every
/// element of a flat parameter buffer:
///
///     t += 1
///     p *= 1 - lr·wd
///     m = β1·m + (1-β1)·g
///     v = β2·v + (1-β2)·g²
///     p -= lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + eps)      (eps outside the sqrt)
///
/// Scalars (bias corrections, step size) are computed in Double, elements in Float.
///
/// Threading: `step` may split the buffer over `threads` workers internally; the object itself
/// must be used from one thread at a time.
///
/// State: `m`, `v` (same length as the buffer) and the step count `t` are public so checkpoints can
/// save and restore them. One optimizer per parameter buffer.
public final class AdamW {
    /// Hyper-parameters apart from the learning rate, which is passed to each `step`.
    public struct Config: Sendable, Hashable, Codable {
        public var beta1: Float
        public var beta2: Float
        public var eps: Float
        public var weightDecay: Float

        /// Defaults are torch's except weight decay 0.1 (GPT-2 training practice; torch uses 0.01).
        public init(beta1: Float = 0.9, beta2: Float = 0.95, eps: Float = 1e-8, weightDecay: Float = 0.1) {
            self.beta1 = beta1
            self.beta2 = beta2
            self.eps = eps
            self.weightDecay = weightDecay
        }
    }

    public var config: Config
    /// First moment, one value per parameter.
    public var m: [Float]
    /// Second moment, one value per parameter.
    public var v: [Float]
    /// Steps taken so far (bias correction uses `t` after incrementing, so the first step has t = 1).
    public var t: Int
    /// Worker threads for `step` on large buffers (≥ 65,536 elements); results do not depend on it.
    public var threads = 1

    /// A fresh optimizer (zero moments, t = 0) for `count` parameters.
    public init(count: Int, config: Config = Config()) {
        precondition(count >= 0, "AdamW: negative parameter count")
        self.config = config
        m = [Float](repeating: 0, count: count)
        v = [Float](repeating: 0, count: count)
        t = 0
    }

    /// A fresh optimizer sized for `layout.totalCount`.
    public convenience init(layout: ParameterLayout, config: Config = Config()) {
        self.init(count: layout.totalCount, config: config)
    }

    /// Number of parameters the optimizer was built for.
    public var count: Int { m.count }

    /// One update of `params` in place from `grads` (both `count` elements) with learning rate `lr`.
    /// Allocates nothing.
    public func step(params: UnsafeMutableBufferPointer<Float>, grads: UnsafeBufferPointer<Float>, lr: Float) {
        precondition(params.count == count && grads.count == count,
                     "AdamW.step: buffers have \(params.count)/\(grads.count) elements, optimizer has \(count)")
        t += 1
        if count == 0 { return }
        let b1 = config.beta1, b2 = config.beta2, eps = config.eps
        let bc1 = 1 - pow(Double(b1), Double(t))
        let bc2Sqrt = (1 - pow(Double(b2), Double(t))).squareRoot()
        let stepSize = Float(Double(lr) / bc1)
        let invBc2Sqrt = Float(1 / bc2Sqrt)
        let decay = 1 - lr * config.weightDecay
        let k = Kernel(b1: b1, b2: b2, eps: eps, decay: decay, stepSize: stepSize, invBc2Sqrt: invBc2Sqrt)
        let p = params.baseAddress!, g = grads.baseAddress!, n = count
        let workers = n >= 1 << 16 ? max(1, threads) : 1
        m.withUnsafeMutableBufferPointer { mb in
            v.withUnsafeMutableBufferPointer { vb in
                let mp = mb.baseAddress!, vp = vb.baseAddress!
                if workers == 1 {
                    k.update(0..<n, p: p, g: g, m: mp, v: vp)
                    return
                }
                // Workers update disjoint chunks (multiples of 4 elements) of the four buffers, and
                // `concurrentPerform` returns only when all are done, so sharing the pointers is safe.
                nonisolated(unsafe) let (sp, sg, sm, sv) = (p, g, mp, vp)
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    let lo = (n * w / workers) & ~3, hi = w == workers - 1 ? n : (n * (w + 1) / workers) & ~3
                    k.update(lo..<hi, p: sp, g: sg, m: sm, v: sv)
                }
            }
        }
    }

    /// The per-element update with the step's scalars folded in.
    struct Kernel {
        let b1: Float, b2: Float, eps: Float, decay: Float, stepSize: Float, invBc2Sqrt: Float

        func update(_ range: Range<Int>, p: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>,
                    m mp: UnsafeMutablePointer<Float>, v vp: UnsafeMutablePointer<Float>) {
            // Explicit 4-wide vectors. `squareRoot()` lowers to a libm call on Linux (errno
            // semantics), which blocks vectorisation, so the square root is `vectorSqrt`.
            typealias V4 = SIMD4<Float>
            let b1v = V4(repeating: b1), b2v = V4(repeating: b2), c1 = V4(repeating: 1 - b1), c2 = V4(repeating: 1 - b2)
            let dv = V4(repeating: decay), sv = V4(repeating: stepSize), bv = V4(repeating: invBc2Sqrt), ev = V4(repeating: eps)
            var i = range.lowerBound
            let n = range.upperBound
            while i + 4 <= n {
                let gi = UnsafeRawPointer(g + i).loadUnaligned(as: V4.self)
                let mi = b1v * UnsafeRawPointer(mp + i).loadUnaligned(as: V4.self) + c1 * gi
                let vi = b2v * UnsafeRawPointer(vp + i).loadUnaligned(as: V4.self) + c2 * gi * gi
                let pi = UnsafeRawPointer(p + i).loadUnaligned(as: V4.self)
                UnsafeMutableRawPointer(mp + i).storeBytes(of: mi, as: V4.self)
                UnsafeMutableRawPointer(vp + i).storeBytes(of: vi, as: V4.self)
                UnsafeMutableRawPointer(p + i).storeBytes(of: pi * dv - sv * mi / (AdamW.vectorSqrt(vi) * bv + ev), as: V4.self)
                i += 4
            }
            while i < n { // tail of fewer than 4 elements
                let gi = g[i]
                let mi = b1 * mp[i] + (1 - b1) * gi
                let vi = b2 * vp[i] + (1 - b2) * gi * gi
                mp[i] = mi
                vp[i] = vi
                p[i] = p[i] * decay - stepSize * mi / (vi.squareRoot() * invBc2Sqrt + eps)
                i += 1
            }
        }
    }

    /// √x for x ≥ 0 to within about 2 ulp: inverse square root from the exponent-halving bit trick
    /// refined by three Newton steps, then x · x^(-1/2). Plain arithmetic, so it stays in vector
    /// registers. x = 0 gives 0 (the initial guess is finite).
    @inline(__always)
    static func vectorSqrt(_ x: SIMD4<Float>) -> SIMD4<Float> {
        let bits = SIMD4<UInt32>(repeating: 0x5F37_59DF) &- (unsafeBitCast(x, to: SIMD4<UInt32>.self) &>> 1)
        var y = unsafeBitCast(bits, to: SIMD4<Float>.self)
        let half = x * 0.5
        y = y * (1.5 - half * y * y)
        y = y * (1.5 - half * y * y)
        y = y * (1.5 - half * y * y)
        return x * y
    }
}
