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
/// State: `m`, `v` (same length as the buffer) and the step count `t` are public so checkpoints can
/// save and restore them. Not thread-safe: one optimizer per parameter buffer, used from one thread.
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
        let p = params.baseAddress!, g = grads.baseAddress!, n = count
        m.withUnsafeMutableBufferPointer { mb in
            v.withUnsafeMutableBufferPointer { vb in
                let mp = mb.baseAddress!, vp = vb.baseAddress!
                for i in 0..<n {
                    let gi = g[i]
                    let mi = b1 * mp[i] + (1 - b1) * gi
                    let vi = b2 * vp[i] + (1 - b2) * gi * gi
                    mp[i] = mi
                    vp[i] = vi
                    p[i] = p[i] * decay - stepSize * mi / (vi.squareRoot() * invBc2Sqrt + eps)
                }
            }
        }
    }
}
