import DeMo
import Foundation
import Membership
import Mesh
import TinyGPT

extension Duration {
    /// Seconds as a Double.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

/// Turns a topology into the pieces one peer runs: model config, engine, loop options. Pure
/// apart from building the model; the shell (the CLI) adds the corpus, transport and files.
public enum PeerSetup {
    /// The model of the run.
    public static func modelConfig(_ t: Topology) throws -> GPTConfig {
        switch t.model {
        case .preset(let name): return try GPTConfig.preset(named: name)
        case let .explicit(l, h, e, b): 
            let c = GPTConfig(nLayer: l, nHead: h, nEmbd: e, blockSize: b)
            try c.validate()
            return c
        }
    }

    /// The optimizer of the run.
    public static func optimizer(_ t: Topology) -> EngineOptimizer {
        let o = t.optimizer
        switch o.kind {
        case .demo:
            let f = DeMoValueFormat(name: o.values.rawValue) ?? .bf16
            let transform: DeMoTransform = o.transform == .none ? .none : .dct
            if let ls = o.localSteps {
                // Weight decay belongs to the inner AdamW; the outer step applies the mean as is.
                let demo = DeMoConfig(decay: o.decay, topk: o.topk, chunk: o.chunk, weightDecay: 0, valueFormat: f,
                                      aggregate: o.aggregate == .mean ? .mean : .clipped, transform: transform)
                return .localSteps(LocalStepsConfig(
                    steps: ls.steps, demo: demo,
                    inner: AdamW.Config(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: Float(o.weightDecay)),
                    outer: OuterStepConfig(lr: ls.outerLR, momentum: ls.outerMomentum, nesterov: ls.outerNesterov)))
            }
            return .demo(DeMoConfig(decay: o.decay, topk: o.topk, chunk: o.chunk, weightDecay: o.weightDecay, valueFormat: f,
                                   aggregate: o.aggregate == .mean ? .mean : .clipped, transform: transform))
        case .adamw:
            return .adamw(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: Float(o.weightDecay))
        }
    }

    /// Learning-rate schedule: warmup (the topology's, default 5% of the steps) then cosine to 10%.
    /// With local steps it is the inner AdamW's, over inner steps (`steps × local_steps`).
    public static func schedule(_ t: Topology) -> LRSchedule {
        if let ls = t.optimizer.localSteps {
            let inner = t.steps * ls.steps
            return LRSchedule(peak: ls.innerLR, warmupSteps: t.optimizer.warmup ?? max(1, inner / 20), totalSteps: inner, minRatio: 0.1)
        }
        return LRSchedule(peak: t.optimizer.lr, warmupSteps: t.optimizer.warmup ?? max(1, t.steps / 20), totalSteps: t.steps, minRatio: 0.1)
    }

    /// Loop settings: heartbeat thresholds and the step deadline.
    public static func options(_ t: Topology) -> PeerOptions {
        let hb = t.heartbeat
        let membership = MembershipConfig(heartbeatInterval: hb.interval.seconds, suspectAfter: hb.suspectAfter.seconds,
                                          deadAfter: hb.deadAfter.seconds, adaptiveK: hb.adaptive ? 4 : nil)
        let deadline: TrainingRound<[UInt8]>.Deadline
        switch t.round.deadline {
        case .fixed(let d): deadline = .fixed(seconds: d.seconds)
        case .adaptive:
            // The floor is the suspicion time: a round that gives up sooner than the failure detector
            // would drop a merely slow contribution, and the replicas would diverge for nothing.
            deadline = .adaptive(k: 4, floor: min(t.round.maxDeadline.seconds, max(0.5, hb.suspectAfter.seconds)),
                                 ceiling: t.round.maxDeadline.seconds)
        }
        var o = PeerOptions(steps: t.steps, membership: membership, deadline: deadline, overlap: t.round.overlap,
                           startupGrace: max(10, 4 * hb.deadAfter.seconds), tick: min(0.02, hb.interval.seconds / 4))
        o.giveUpAfter = max(o.startupGrace, t.startup.giveUpAfter.seconds)
        o.endpoints = t.peers.map { $0.pub.description }
        o.fingerprint = t.fingerprint(peerID: "")   // the node puts its own id in
        return o
    }
}
