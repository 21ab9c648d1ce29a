/// Global-norm gradient clipping (`torch.nn.utils.clip_grad_norm_` over one flat buffer).
///
/// Computes the L2 norm of all `grads` (accumulated in Double) and, when it exceeds `maxNorm`,
/// scales every gradient by `maxNorm / (norm + 1e-6)` in place. Returns the norm before clipping.
/// A non-finite norm (NaN/∞ gradients) is returned without touching `grads`, so the caller can skip
/// the step. Single-threaded; allocates nothing.
@discardableResult
public func clipGradNorm(_ grads: UnsafeMutableBufferPointer<Float>, maxNorm: Float) -> Float {
    var sum = 0.0
    for g in grads { sum += Double(g) * Double(g) }
    let norm = sum.squareRoot()
    guard norm.isFinite else { return Float(norm) }
    if norm > Double(maxNorm) {
        let scale = Float(Double(maxNorm) / (norm + 1e-6))
        for i in grads.indices { grads[i] *= scale }
    }
    return Float(norm)
}
