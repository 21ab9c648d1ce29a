/// The model-and-optimizer side of a peer, as the peer loop sees it.
///
/// `PeerNode` handles the network, membership and rounds; an engine turns a step number into the
/// bytes of this peer's contribution and applies the contributions the round collected. The real
/// engine (`GPTEngine`) runs TinyGPT with DeMo or AdamW; tests use small deterministic engines.
///
/// Threading: `contribute`, `apply`, `snapshot`, `restore` and `digest` run only inside the peer's
/// worker jobs, one at a time. `validate` and the two byte counts are called from the loop thread
/// while a job may be running: they must read only state that never changes after init.
public protocol StepEngine: AnyObject {
    /// Forward/backward on this peer's batch of `step`; returns the UPDATE body and the loss (nats).
    func contribute(step: Int) throws -> (body: [UInt8], loss: Float)
    /// Checks a body another peer sent before it is counted; throws a typed error on anything
    /// malformed (it is then dropped and logged, never applied).
    func validate(body: [UInt8]) throws
    /// Applies `step` with the round's contributions, sorted by peer index (own one included).
    func apply(step: Int, contributions: [(peer: Int, body: [UInt8])]) throws
    /// The replicated state (parameters, and the optimizer state every replica shares, such as
    /// AdamW's moments) as bytes, for a catch-up snapshot. Per-peer state (the DeMo residual) is
    /// not included: a repaired peer keeps its own.
    func snapshot() -> [UInt8]
    /// Replaces the replicated state with a donor's snapshot; throws (changing nothing) when the
    /// bytes do not fit this engine.
    func restore(snapshot: [UInt8]) throws
    /// Digest of the current parameters (equal on every replica that applied the same stream).
    func digest() -> UInt64
    /// What the reference DeMo would send for one contribution (int64 index + f32 value per
    /// coefficient), and what dense fp32 gradients would take, for rounds.jsonl.
    var referenceBytesPerContribution: Int { get }
    var denseBytesPerContribution: Int { get }
    /// How each contributor of applied step `step` compared with the others, once (then
    /// forgotten); nil when the engine does not score. Called from the loop thread: thread-safe.
    func takeContributionScores(step: Int) -> [ContributionScore]?
    /// Tokens this peer trains on for one contribution (a batch; H batches with local steps), for
    /// the bytes-per-token figures of rounds.jsonl; 0 when unknown. Constant after init.
    var tokensPerContribution: Int { get }
}

extension StepEngine {
    public func takeContributionScores(step: Int) -> [ContributionScore]? { nil }
    public var tokensPerContribution: Int { 0 }
}

/// One contributor of one applied step against the others (DeMo's `DeMoContributorScore`), for
/// rounds.jsonl: the same on every peer that applied the same set.
public struct ContributionScore: Sendable, Equatable {
    public var peer: Int
    /// Fraction of its coefficients whose sign agrees with the other contributors' sum (nil: alone).
    public var agreement: Double?
    /// Largest per-tensor ratio of its norm to the median norm (> 1: it was clipped there).
    public var normRatio: Double
    /// Tensors where its values were scaled down.
    public var clippedTensors: Int

    public init(peer: Int, agreement: Double?, normRatio: Double, clippedTensors: Int) {
        self.peer = peer
        self.agreement = agreement
        self.normRatio = normRatio
        self.clippedTensors = clippedTensors
    }
}
