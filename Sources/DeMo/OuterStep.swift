import Tensors

/// The outer step of local steps over compressed sync (DESIGN §5, "Local steps").
///
/// Every peer starts an outer step from the same shared parameters θ, runs H inner steps alone,
/// and sends the compressed pseudo-gradient `θ − θ_local` (`DeMoOptimizer.prepare` with `lr = 1`:
/// the residual is the error-feedback buffer `e = decay·e + Δ`, what is sent is subtracted from it).
/// The outer step is the same on every peer:
///
///     Δ̄ = (1/n) Σ_j c_j · decode(payload_j)       (c_j: the clip factors of `aggregate`)
///     m = μ·m + Δ̄;  u = Nesterov ? Δ̄ + μ·m : m    (μ = 0: u = Δ̄, no momentum state)
///     θ = θ − outer_lr · u
///
/// The mean divides by the number of contributors n (a coefficient only some peers sent counts
/// as zero for the others): an average of sparse vectors, not DeMo's per-coefficient mean.
public struct OuterStepConfig: Sendable, Hashable, Codable {
    /// Outer learning rate (> 0; 1 applies the mean pseudo-gradient as is).
    public var lr: Double
    /// Outer momentum μ in [0, 1); 0: none.
    public var momentum: Double
    /// Nesterov (true) or heavy-ball (false) momentum.
    public var nesterov: Bool

    public init(lr: Double = 1, momentum: Double = 0, nesterov: Bool = true) {
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
    }
}

/// The replicated state of the outer step: the momentum buffer (empty when μ = 0). Deterministic:
/// plain Float loops in a fixed order, so replicas applying the same contributions end
/// bit-identical. A value type; use from one thread at a time.
public struct OuterStep: Sendable {
    public let config: OuterStepConfig
    /// Outer momentum, one float per parameter; empty when `config.momentum == 0`.
    public var momentum: [Float]

    /// Throws `DeMoError.badHyperparameter` for a non-positive or non-finite lr, or μ outside [0, 1).
    public init(count: Int, config: OuterStepConfig) throws {
        guard config.lr.isFinite, config.lr > 0 else { throw DeMoError.badHyperparameter("outer lr \(config.lr) must be finite and > 0") }
        guard config.momentum >= 0, config.momentum < 1 else {
            throw DeMoError.badHyperparameter("outer momentum \(config.momentum) must be in [0, 1)")
        }
        self.config = config
        momentum = config.momentum > 0 ? [Float](repeating: 0, count: count) : []
    }

    /// Moves `params` by the outer update of the mean pseudo-gradient `mean` (same length).
    public mutating func step(params: UnsafeMutableBufferPointer<Float>, mean: UnsafeBufferPointer<Float>) throws {
        guard params.count == mean.count else {
            throw DeMoError.bufferSize(what: "pseudo-gradient", expected: params.count, got: mean.count)
        }
        let lr = Float(config.lr)
        if momentum.isEmpty {
            for i in 0..<params.count { params[i] = params[i] - lr * mean[i] }
            return
        }
        guard momentum.count == params.count else {
            throw DeMoError.bufferSize(what: "outer momentum", expected: params.count, got: momentum.count)
        }
        let mu = Float(config.momentum), nesterov = config.nesterov
        momentum.withUnsafeMutableBufferPointer { m in
            for i in 0..<params.count {
                let mi = mu * m[i] + mean[i]
                m[i] = mi
                let u = nesterov ? mean[i] + mu * mi : mi
                params[i] = params[i] - lr * u
            }
        }
    }

    /// Replaces the momentum (from a checkpoint or a donor's snapshot): `count` finite floats, or
    /// empty when μ = 0.
    public mutating func setMomentum(_ m: [Float]) throws {
        guard m.count == momentum.count else {
            throw DeMoError.bufferSize(what: "outer momentum", expected: momentum.count, got: m.count)
        }
        if let i = m.firstIndex(where: { !$0.isFinite }) {
            throw DeMoError.badHyperparameter("outer momentum element \(i) is not finite")
        }
        momentum = m
    }
}

extension DeMoOptimizer {
    /// The mean of the contributors' decoded payloads, dense, in the parameter layout
    /// (`layout.totalCount` floats written to `out`): per tensor, each contributor's coefficients
    /// times its clip factor (`aggregate`; exactly 1 under `mean` or equal norms) are inverse
    /// transformed and summed in ascending peer order, then divided by the contributor count.
    /// Validates everything first (as `apply`); on error `out` is untouched. Deterministic.
    public func meanDecoded(_ contributions: [DeMoContribution], into out: UnsafeMutableBufferPointer<Float>) throws {
        guard out.count == layout.totalCount else {
            throw DeMoError.bufferSize(what: "pseudo-gradient buffer", expected: layout.totalCount, got: out.count)
        }
        let sorted = try validated(contributions)
        for i in 0..<out.count { out[i] = 0 }
        guard !sorted.isEmpty, let base = out.baseAddress else { return }
        let inv = 1 / Float(sorted.count)
        for t in plan.tensors.indices {
            let tp = plan.tensors[t], tr = transforms[t]
            let factors = clipFactors(tensor: t, sorted).factor
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, tp.count))
            defer { scratch.deallocate() }
            let dst = base + tp.offset
            for (j, c) in sorted.enumerated() {
                let tpay = c.payload.tensors[t]
                let values = factors[j] == 1 ? tpay.values : tpay.values.map { $0 * factors[j] }
                Self.sparseDecode(tp, tr, tpay.indices, values, into: scratch)
                for i in 0..<tp.count { dst[i] += scratch[i] }
            }
            for i in 0..<tp.count { dst[i] *= inv }
        }
    }
}
