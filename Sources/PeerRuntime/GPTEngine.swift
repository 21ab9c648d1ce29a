import DeMo
import Foundation
import Tensors
import TinyGPT

/// Errors of the GPT engine.
public enum EngineError: Error, CustomStringConvertible {
    case nonFiniteLoss(step: Int)
    case badDenseBody(bytes: Int, expected: Int)
    case nonFiniteDense
    case checkpointMismatch(String)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let s): return "loss is not finite at step \(s); lower the learning rate"
        case .badDenseBody(let n, let e): return "dense gradient body has \(n) bytes, expected \(e)"
        case .nonFiniteDense: return "dense gradient body contains NaN or infinity"
        case .checkpointMismatch(let why): return "checkpoint does not fit this run: \(why). Move it away or use the topology it was written with."
        }
    }
}

/// Which optimizer a peer runs.
public enum EngineOptimizer {
    /// DeMo: sparse DCT top-k contributions, sign update.
    case demo(DeMoConfig)
    /// Data-parallel AdamW baseline: dense fp32 gradients, averaged by every peer.
    case adamw(beta1: Float, beta2: Float, eps: Float, weightDecay: Float)
    /// Local steps over compressed sync: H inner AdamW steps, then DeMo's codec on the
    /// pseudo-gradient (DeMo's `decay` is the error-feedback decay), then `OuterStep`.
    case localSteps(LocalStepsConfig)
}

/// The settings of `EngineOptimizer.localSteps`. The engine's `schedule` is the inner AdamW's,
/// indexed by inner step `s·H + h` (outer step s).
public struct LocalStepsConfig: Sendable {
    /// Inner steps per outer step (>= 1).
    public var steps: Int
    /// Compression of the pseudo-gradient (weight decay belongs to the inner AdamW: keep 0 here).
    public var demo: DeMoConfig
    public var inner: AdamW.Config
    public var outer: OuterStepConfig

    public init(steps: Int, demo: DeMoConfig, inner: AdamW.Config, outer: OuterStepConfig) {
        self.steps = steps
        self.demo = demo
        self.inner = inner
        self.outer = outer
    }
}

/// The inner phase's and outer step's state of a local-steps engine.
final class LocalStepsState {
    let steps: Int
    /// The inner AdamW (per peer: in the checkpoint, not in catch-up snapshots).
    let inner: AdamW
    /// Replicated: the same on every peer (in snapshots and checkpoints).
    var outer: OuterStep
    /// Start parameters of the running inner phase, and the pseudo-gradient (scratch).
    var start: [Float]
    var delta: [Float]

    init(count: Int, config: LocalStepsConfig) throws {
        guard config.steps >= 1 else { throw DeMoError.badHyperparameter("local steps \(config.steps) must be >= 1") }
        steps = config.steps
        inner = AdamW(count: count, config: config.inner)
        outer = try OuterStep(count: count, config: config.outer)
        start = [Float](repeating: 0, count: count)
        delta = [Float](repeating: 0, count: count)
    }
}

/// TinyGPT + DeMo (or AdamW) as a `StepEngine`: the real work of a peer.
///
/// Owns the model, the optimizer state and one batch buffer; not thread-safe (trainer thread only).
public final class GPTEngine: StepEngine {
    public let model: GPTModel
    public let sampler: BatchSampler
    public let peer: Int
    public let schedule: LRSchedule
    public let clipNorm: Float?
    public internal(set) var demo: DeMoOptimizer?
    public private(set) var adam: AdamW?
    /// Local steps (nil: one DeMo or AdamW step per round).
    let local: LocalStepsState?
    private var batch: TokenBatch
    /// Global gradient norm of the last step, before clipping.
    public private(set) var lastGradNorm: Float = 0
    private let denseCount: Int
    /// DeMo's chunk plan (immutable), for `validate` off the worker.
    private let validationPlan: DeMoPlan?
    private let referenceBytes: Int
    private var averaged: [Float]
    /// Own DeMo payloads computed ahead of the applied step (overlap), by tag: the gradient of the
    /// next tag is taken at the parameters these predict (see `computeGradientsPredicted`).
    private var ownAhead: [Int: DeMoPayload] = [:]
    /// The parameters while a predicted forward/backward runs.
    private var savedParameters: [Float] = []
    /// Measurements only (`murmur peer --poison-scale`): this peer's gradients are multiplied by
    /// this factor after clipping and before the optimizer, to play a hostile-but-authorised peer
    /// whose every frame is valid. nil: honest.
    public var gradientScale: Float?
    /// Per applied step, how every contributor compared with the others (DeMo only), until the
    /// loop takes them for rounds.jsonl. Written by the worker, read by the loop: locked.
    private let scoreStore = ScoreStore()

    public init(model: GPTModel, sampler: BatchSampler, peer: Int, optimizer: EngineOptimizer,
                schedule: LRSchedule, clipNorm: Float?) throws {
        self.model = model
        self.sampler = sampler
        self.peer = peer
        self.schedule = schedule
        self.clipNorm = clipNorm
        batch = TokenBatch(batchSize: sampler.batchSize, seqLen: sampler.seqLen)
        denseCount = model.layout.totalCount
        averaged = [Float](repeating: 0, count: denseCount)
        var local: LocalStepsState?
        switch optimizer {
        case .demo(let c): demo = try DeMoOptimizer(layout: model.layout, config: c)
        case .adamw(let b1, let b2, let eps, let wd):
            adam = AdamW(count: denseCount, config: AdamW.Config(beta1: b1, beta2: b2, eps: eps, weightDecay: wd))
        case .localSteps(let c):
            demo = try DeMoOptimizer(layout: model.layout, config: c.demo)
            local = try LocalStepsState(count: denseCount, config: c)
        }
        self.local = local
        validationPlan = demo?.plan
        if let demo {
            referenceBytes = DeMoCodec.accounting(plan: demo.plan, format: demo.config.valueFormat).referenceBytes
        } else {
            referenceBytes = 4 * denseCount
        }
    }

    public var referenceBytesPerContribution: Int { referenceBytes }

    public var denseBytesPerContribution: Int { 4 * denseCount }

    /// Tokens this peer trains on per contribution: one batch, or H with local steps.
    public var tokensPerContribution: Int { (local?.steps ?? 1) * sampler.batchSize * sampler.seqLen }

    /// Forward and backward on this peer's batch of `step` (gradients clipped), without the optimizer.
    public func computeGradients(step: Int) throws -> Float {
        try computeGradients(dataStep: step)
    }

    /// `computeGradients` on the batch of data step `dataStep` (the inner step with local steps).
    func computeGradients(dataStep step: Int) throws -> Float {
        sampler.trainBatch(peer: peer, step: step, into: &batch)
        let loss = batch.inputs.withUnsafeBufferPointer { inp in
            batch.targets.withUnsafeBufferPointer { tgt in
                model.forward(inputs: inp, targets: tgt, batch: batch.batchSize, seqLen: batch.seqLen)
            }
        }
        guard loss.isFinite else { throw EngineError.nonFiniteLoss(step: step) }
        model.backward()
        if let clipNorm { lastGradNorm = clipGradNorm(model.gradients, maxNorm: clipNorm) }
        return loss
    }

    /// Train loss of the newest contribution (nats/byte; NaN before the first).
    public internal(set) var lastLoss: Float = .nan

    public func contribute(step: Int) throws -> (body: [UInt8], loss: Float) {
        if let local { return try contributeLocal(step: step, local) }
        let loss = try computeGradientsPredicted(step: step)
        lastLoss = loss
        if let s = gradientScale, s != 1 {
            let g = model.gradients
            for i in 0..<denseCount { g[i] *= s }
        }
        let lr = schedule.rate(at: step)
        if demo != nil {
            let payload = try demo!.prepare(gradients: UnsafeBufferPointer(model.gradients), lr: lr)
            ownAhead[step] = payload
            return (try DeMoCodec.encode(payload, plan: demo!.plan), loss)
        }
        var body = [UInt8](repeating: 0, count: 4 * denseCount)
        body.withUnsafeMutableBytes { raw in
            let g = model.gradients
            for i in 0..<denseCount { raw.storeBytes(of: g[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        }
        return (body, loss)
    }

    /// Forward and backward for `step`. With overlap the steps before it may not be applied yet
    /// (their contributions are still travelling): then the gradient is taken at the parameters
    /// *predicted* by applying this peer's own pending payloads (the sign of its own fast
    /// components, at each step's lr) instead of at the stale ones, and the parameters are put
    /// back bit for bit afterwards. Measured (4 peers, `small`, 1,000 steps, overlap 1): val loss
    /// 1.886 against 2.593 with stale gradients and 1.763 without overlap; standing in the other
    /// peers' payloads of the last step as well made it worse (2.418): DeMo's fast components
    /// flip sign from step to step. Deterministic: it depends only on this peer's own state, and
    /// what is applied is still exactly the committed set. Without overlap nothing is pending.
    func computeGradientsPredicted(step: Int) throws -> Float {
        let pending = ownAhead.filter { $0.key < step }.sorted { $0.key < $1.key }
        guard let demo, !pending.isEmpty else { return try computeGradients(step: step) }
        let params = model.parameters
        if savedParameters.count != params.count { savedParameters = [Float](repeating: 0, count: params.count) }
        savedParameters.withUnsafeMutableBufferPointer { dst in _ = dst.initialize(from: UnsafeBufferPointer(params)) }
        defer {
            savedParameters.withUnsafeBufferPointer { src in
                for i in 0..<params.count { params[i] = src[i] }
            }
        }
        for (tag, payload) in pending {
            try demo.apply([DeMoContribution(peer: peer, payload: payload)], lr: schedule.rate(at: tag), to: params)
        }
        return try computeGradients(step: step)
    }

    /// Called on the loop thread while a job may run on the worker: it reads only constants
    /// (`validationPlan`, `denseCount`), never `demo`, whose reference the worker is using.
    public func validate(body: [UInt8]) throws {
        if let validationPlan {
            _ = try DeMoCodec.decode(body, plan: validationPlan)
            return
        }
        guard body.count == 4 * denseCount else { throw EngineError.badDenseBody(bytes: body.count, expected: 4 * denseCount) }
        let ok = body.withUnsafeBytes { raw in
            (0..<denseCount).allSatisfy { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))).isFinite }
        }
        if !ok { throw EngineError.nonFiniteDense }
    }

    public func apply(step: Int, contributions: [(peer: Int, body: [UInt8])]) throws {
        if let local { return try applyLocal(step: step, contributions: contributions, local) }
        let lr = schedule.rate(at: step)
        ownAhead = ownAhead.filter { $0.key > step }
        let sorted = contributions.sorted { $0.peer < $1.peer }
        if let demo {
            let decoded = try sorted.map { DeMoContribution(peer: $0.peer, payload: try DeMoCodec.decode($0.body, plan: demo.plan)) }
            let scores = try demo.applyScored(decoded, lr: lr, to: model.parameters)
            scoreStore.put(step: step, scores.map {
                ContributionScore(peer: $0.peer, agreement: $0.agreement, normRatio: $0.normRatio, clippedTensors: $0.clippedTensors)
            })
            return
        }
        // Dense average in peer order: a fixed summation order keeps replicas bit-identical.
        for c in sorted { try validate(body: c.body) }
        averaged.withUnsafeMutableBufferPointer { avg in
            for i in 0..<denseCount { avg[i] = 0 }
            for c in sorted {
                c.body.withUnsafeBytes { raw in
                    for i in 0..<denseCount {
                        avg[i] += Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                    }
                }
            }
            let inv = 1 / Float(sorted.count)
            for i in 0..<denseCount { avg[i] *= inv }
            adam!.step(params: model.parameters, grads: UnsafeBufferPointer(avg), lr: Float(lr))
        }
    }

    public func snapshot() -> [UInt8] {
        var floats = Array(model.parameters)
        if let adam { floats += adam.m; floats += adam.v }
        if let local { floats += local.outer.momentum }
        var out = [UInt8](repeating: 0, count: 8 + 4 * floats.count)
        out.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt64(adam?.t ?? 0).littleEndian, toByteOffset: 0, as: UInt64.self)
            for (i, f) in floats.enumerated() { raw.storeBytes(of: f.bitPattern.littleEndian, toByteOffset: 8 + 4 * i, as: UInt32.self) }
        }
        return out
    }

    public func restore(snapshot bytes: [UInt8]) throws {
        ownAhead = [:]
        let n = denseCount * (adam == nil ? 1 : 3) + (local?.outer.momentum.count ?? 0)
        guard bytes.count == 8 + 4 * n else { throw EngineError.badDenseBody(bytes: bytes.count, expected: 8 + 4 * n) }
        var floats = [Float](repeating: 0, count: n)
        let t = bytes.withUnsafeBytes { raw -> UInt64 in
            for i in 0..<n { floats[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8 + 4 * i, as: UInt32.self))) }
            return UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        }
        guard floats.allSatisfy(\.isFinite) else { throw EngineError.nonFiniteDense }
        if let local { try local.outer.setMomentum(Array(floats[denseCount...])) }
        for i in 0..<denseCount { model.parameters[i] = floats[i] }
        if let adam {
            adam.m = Array(floats[denseCount..<(2 * denseCount)])
            adam.v = Array(floats[(2 * denseCount)...])
            adam.t = Int(t)
        }
    }

    /// SHA-256-based digest (`StateDigest`) of everything a snapshot carries, in snapshot order:
    /// parameters, AdamW's moments and step count, the outer momentum. A snapshot that passes the
    /// majority's digest is then the majority's whole replicated state, not only its parameters.
    public func digest() -> UInt64 {
        var t = UInt64(adam?.t ?? 0).littleEndian
        return withUnsafeBytes(of: &t) { tBytes in
            var parts = [UnsafeRawBufferPointer(UnsafeBufferPointer(model.parameters))]
            guard adam != nil || local != nil else { return StateDigest.of(parts) }
            let m = adam?.m ?? [], v = adam?.v ?? [], momentum = local?.outer.momentum ?? []
            return m.withUnsafeBytes { mb in v.withUnsafeBytes { vb in momentum.withUnsafeBytes { ob in
                if adam != nil { parts += [mb, vb, tBytes] }
                parts.append(ob)
                return StateDigest.of(parts)
            } } }
        }
    }

    public func takeContributionScores(step: Int) -> [ContributionScore]? { scoreStore.take(step: step) }

    /// Who became or stopped being a content suspect (`ContentWatch`) since the last call, in
    /// the order of the applied steps. Thread-safe.
    public func takeContentChanges() -> [ContentWatch.Change] { scoreStore.takeChanges() }
}

/// Scores by step, bounded (steps replayed in a catch-up are never taken: the oldest go first).
private final class ScoreStore: @unchecked Sendable {
    private let lock = NSLock()
    private var byStep: [Int: [ContributionScore]] = [:]
    private var watch = ContentWatch()
    private var changes: [ContentWatch.Change] = []

    func put(step: Int, _ s: [ContributionScore]) {
        lock.lock(); defer { lock.unlock() }
        byStep[step] = s
        if byStep.count > 64, let oldest = byStep.keys.min() { byStep[oldest] = nil }
        changes += watch.observe(step: step, s)
        if changes.count > 256 { changes.removeFirst(changes.count - 256) }
    }

    func takeChanges() -> [ContentWatch.Change] {
        lock.lock(); defer { lock.unlock() }
        defer { changes = [] }
        return changes
    }

    func take(step: Int) -> [ContributionScore]? {
        lock.lock(); defer { lock.unlock() }
        return byStep.removeValue(forKey: step)
    }
}


extension GPTEngine {
    /// Everything this peer needs to resume at `step` (DESIGN §7): parameters, the DeMo residual
    /// (which the reference loses), AdamW moments, and identifying metadata.
    public func checkpoint(step: Int, incarnation: UInt32, runID: UInt64, extra: [String: String] = [:]) -> TrainingCheckpoint {
        var c = TrainingCheckpoint(config: model.config, step: step, incarnation: incarnation, runID: runID,
                                   parameters: Array(model.parameters), extra: extra)
        c.extra["data_cursor"] = String(step)   // batches are a function of (seed, peer, step)
        c.extra["peer_index"] = String(peer)
        c.extra["corpus_sha256"] = sampler.corpusDigest
        c.residual = demo?.residual
        if let adam { c.adamM = adam.m; c.adamV = adam.v; c.adamT = adam.t }
        if let local {
            // The inner phase's own state (inner AdamW; the residual above is the error-feedback
            // buffer) and the replicated outer momentum.
            c.adamM = local.inner.m; c.adamV = local.inner.v; c.adamT = local.inner.t
            c.outerMomentum = local.outer.momentum.isEmpty ? nil : local.outer.momentum
            c.extra["data_cursor"] = String(step * local.steps)
            c.extra["local_steps"] = String(local.steps)
        }
        return c
    }

    /// Restores a checkpoint written by `checkpoint(step:…)`; throws (changing nothing) when it does
    /// not belong to this model and optimizer.
    public func restore(_ c: TrainingCheckpoint) throws {
        guard c.config == model.config else { throw EngineError.checkpointMismatch("model config \(c.config) differs from the run's \(model.config)") }
        guard c.parameters.count == denseCount else { throw EngineError.checkpointMismatch("parameter count") }
        if demo != nil {
            guard let r = c.residual else { throw EngineError.checkpointMismatch("no DeMo residual in a DeMo run's checkpoint") }
            try demo!.setResidual(r)
        }
        if let adam {
            guard let m = c.adamM, let v = c.adamV else { throw EngineError.checkpointMismatch("no AdamW moments in an AdamW run's checkpoint") }
            adam.m = m
            adam.v = v
            adam.t = c.adamT
        }
        if let local {
            guard let m = c.adamM, let v = c.adamV, m.count == denseCount, v.count == denseCount else {
                throw EngineError.checkpointMismatch("no inner AdamW moments in a local-steps run's checkpoint")
            }
            guard c.extra["local_steps"] == String(local.steps) else {
                throw EngineError.checkpointMismatch("written with local_steps \(c.extra["local_steps"] ?? "1"), the run has \(local.steps)")
            }
            try local.outer.setMomentum(c.outerMomentum ?? [])
            local.inner.m = m
            local.inner.v = v
            local.inner.t = c.adamT
        }
        for i in 0..<denseCount { model.parameters[i] = c.parameters[i] }
        ownAhead = [:]
    }
}
