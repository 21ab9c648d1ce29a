import DeMo
import Tensors

/// Local steps over compressed sync (DESIGN §5, "Local steps"): one contribution is H inner AdamW
/// steps on this peer's own batches; one applied round is one outer step.
///
/// Between jobs `model.parameters` always hold the shared outer parameters θ (what digests,
/// snapshots, checkpoints and validation see): `contributeLocal` runs the inner phase on them and
/// puts θ back bit for bit before it returns, and `applyLocal` moves θ by the outer step. The inner
/// AdamW's moments carry over from one inner phase to the next. Trainer thread only.
extension GPTEngine {
    /// Outer step `step`: inner steps `step·H … step·H + H − 1` (batches and inner learning rates
    /// by inner step), pseudo-gradient `θ − θ_local` into the error feedback, compressed. Returns
    /// the mean inner train loss.
    func contributeLocal(step: Int, _ local: LocalStepsState) throws -> (body: [UInt8], loss: Float) {
        let params = model.parameters
        let n = params.count
        local.start.withUnsafeMutableBufferPointer { dst in _ = dst.initialize(from: UnsafeBufferPointer(params)) }
        // Whatever happens, the shared parameters come back unchanged.
        defer { local.start.withUnsafeBufferPointer { src in for i in 0..<n { params[i] = src[i] } } }
        var lossSum = 0.0
        for h in 0..<local.steps {
            let j = step * local.steps + h
            let loss = try computeGradients(dataStep: j)
            lossSum += Double(loss)
            if let s = gradientScale, s != 1 { for i in 0..<n { model.gradients[i] *= s } }
            local.inner.step(params: params, grads: UnsafeBufferPointer(model.gradients), lr: Float(schedule.rate(at: j)))
        }
        local.start.withUnsafeBufferPointer { st in
            local.delta.withUnsafeMutableBufferPointer { d in for i in 0..<n { d[i] = st[i] - params[i] } }
        }
        let loss = Float(lossSum / Double(local.steps))
        lastLoss = loss
        let payload = try local.delta.withUnsafeBufferPointer { try demo!.prepare(gradients: $0, lr: 1) }
        return (try DeMoCodec.encode(payload, plan: demo!.plan), loss)
    }

    /// The outer step of round `step`: θ moves by `OuterStep` of the mean decoded contribution.
    func applyLocal(step: Int, contributions: [(peer: Int, body: [UInt8])], _ local: LocalStepsState) throws {
        let plan = demo!.plan
        let decoded = try contributions.map { DeMoContribution(peer: $0.peer, payload: try DeMoCodec.decode($0.body, plan: plan)) }
        try local.delta.withUnsafeMutableBufferPointer { try demo!.meanDecoded(decoded, into: $0) }
        try local.delta.withUnsafeBufferPointer { try local.outer.step(params: model.parameters, mean: $0) }
    }
}
