import DeMo
import Foundation
import Membership
import Mesh
import Tensors
import Testing
import TinyGPT
@testable import PeerRuntime

/// GPTEngine with local steps: the inner phase, the outer step, checkpoints and a simulated mesh.
@Suite struct LocalStepsEngineTests {
    static let corpus = try! Corpus(bytes: Array(String(repeating: "To be, or not to be, that is the question. ", count: 60).utf8),
                                    source: "test", contextLength: 32)

    static func config(steps h: Int = 4, transform: DeMoTransform = .dct, format: DeMoValueFormat = .twoBit, topk: Int = 8,
                       decay: Double = 0.95, momentum: Double = 0) -> LocalStepsConfig {
        LocalStepsConfig(steps: h, demo: DeMoConfig(decay: decay, topk: topk, chunk: 16, weightDecay: 0, valueFormat: format, transform: transform),
                         inner: AdamW.Config(weightDecay: 0), outer: OuterStepConfig(lr: 1, momentum: momentum))
    }

    static func engine(peer: Int, _ c: LocalStepsConfig) throws -> GPTEngine {
        let model = try GPTModel(config: try GPTConfig.preset(named: "nano"), maxBatchSize: 2, seed: 5)
        return try GPTEngine(model: model, sampler: BatchSampler(corpus: corpus, seed: 5, batchSize: 2, seqLen: 32),
                             peer: peer, optimizer: .localSteps(c), schedule: .constant(3e-3), clipNorm: 1)
    }

    /// The inner phase leaves the shared parameters bit for bit as they were; with everything sent
    /// exactly (no transform, f32, every entry) and one peer, the outer step with lr 1 lands on the
    /// parameters the H inner AdamW steps reached (θ − (θ − θ_H), up to one rounding).
    @Test func oneExactPeerLandsWhereItsInnerStepsWent() throws {
        let c = Self.config(transform: .none, format: .f32, topk: 256, decay: 0)
        let e = try Self.engine(peer: 0, c)
        let before = Array(e.model.parameters), digest = e.digest()
        let (body, loss) = try e.contribute(step: 0)
        #expect(loss.isFinite)
        #expect(e.digest() == digest && Array(e.model.parameters) == before)
        #expect(e.tokensPerContribution == 4 * 2 * 32)
        // The same H inner steps by hand.
        let twin = try Self.engine(peer: 0, c)
        let adam = AdamW(count: before.count, config: c.inner)
        for h in 0..<4 {
            _ = try twin.computeGradients(dataStep: h)
            adam.step(params: twin.model.parameters, grads: UnsafeBufferPointer(twin.model.gradients), lr: 3e-3)
        }
        try e.apply(step: 0, contributions: [(peer: 0, body: body)])
        var moved = 0
        for i in before.indices {
            let want = twin.model.parameters[i], got = e.model.parameters[i]
            #expect(abs(got - want) <= 1e-6 * max(1, abs(want)), "parameter \(i)")
            if got != before[i] { moved += 1 }
        }
        #expect(moved > before.count / 2)
        #expect(e.demo!.residual.allSatisfy { $0 == 0 })
    }

    /// A checkpoint holds the inner phase's state: a fresh engine restored from it computes the
    /// same next contribution bit for bit (inner AdamW moments, error feedback, outer momentum).
    @Test func checkpointResumesTheInnerPhaseExactly() throws {
        let c = Self.config(momentum: 0.5)
        let a = try Self.engine(peer: 1, c)
        for s in 0..<2 {
            let (body, _) = try a.contribute(step: s)
            try a.apply(step: s, contributions: [(peer: 1, body: body)])
        }
        let bytes = try a.checkpoint(step: 2, incarnation: 1, runID: 9).encoded()
        let b = try Self.engine(peer: 1, c)
        try b.restore(try TrainingCheckpoint.decode(bytes))
        #expect(b.digest() == a.digest())
        let (x, _) = try a.contribute(step: 2), (y, _) = try b.contribute(step: 2)
        #expect(x == y)
        try a.apply(step: 2, contributions: [(peer: 1, body: x)])
        try b.apply(step: 2, contributions: [(peer: 1, body: y)])
        #expect(a.digest() == b.digest())
        // Without the outer momentum the next outer step would differ: the snapshot carries it too.
        let d = try Self.engine(peer: 0, c)
        try d.restore(snapshot: a.snapshot())
        #expect(d.snapshot() == a.snapshot())
        // A checkpoint written with another H is refused with a message, changing nothing.
        let other = try Self.engine(peer: 1, Self.config(steps: 8, momentum: 0.5))
        let digest = other.digest()
        #expect(throws: EngineError.self) { try other.restore(try TrainingCheckpoint.decode(bytes)) }
        #expect(other.digest() == digest)
    }

    /// Three peers on the simulated mesh, H = 4, one contribution per outer step: every replica
    /// ends on the same parameters, which moved, while each peer's error feedback is its own.
    @Test(arguments: [DeMoTransform.dct, .none])
    func simulatedMeshEndsOnOneModel(transform: DeMoTransform) throws {
        let topo = try loopbackTopology(peers: 3)
        let engines = try (0..<3).map { try Self.engine(peer: $0, Self.config(transform: transform, momentum: 0.5)) }
        let before = engines[0].digest()
        let cluster = try SimulatedCluster(topology: topo, engines: engines, steps: 6, seed: 3)
        _ = try cluster.runToEnd()
        let digests = Set(engines.map { $0.digest() })
        #expect(digests.count == 1)
        #expect(digests.first != before)
        #expect(engines[0].demo!.residual != engines[1].demo!.residual)
    }

    /// Crash mid-run, restart from the checkpoint (inner AdamW, error feedback, outer momentum),
    /// catch up by replay: all three replicas end on the same digest.
    @Test func crashAndRejoinFromACheckpointAgrees() throws {
        let topo = try loopbackTopology(peers: 3)
        let c = Self.config(momentum: 0.5)
        let network = InMemoryNetwork(topology: topo, seed: 4)
        let clock = ManualClock()
        let opts = PeerOptions(steps: 30, membership: MembershipConfig(heartbeatInterval: 0.1, suspectAfter: 0.5, deadAfter: 1.5),
                               deadline: .fixed(seconds: 1), startupGrace: 5, tick: 0, replaySteps: 1000, snapshotChunk: 3)
        var engines = try (0..<3).map { try Self.engine(peer: $0, c) }
        func node(_ p: Int, _ incarnation: UInt32) throws -> PeerNode {
            try PeerNode(me: p, runID: 7, peerIDs: topo.peers.map(\.id), incarnation: incarnation,
                         transport: network.transport(for: PeerIndex(p)), engine: engines[p], options: opts, runDirectory: nil,
                         worker: SimulatedStepWorker(), clock: { clock.now })
        }
        var nodes = try (0..<3).map { try node($0, 1) }
        var saved: (step: Int, bytes: Data)?
        nodes[2].onApplied = { s in
            if saved == nil, s == 2 { saved = (s + 1, try! engines[2].checkpoint(step: s + 1, incarnation: 1, runID: 7).encoded()) }
        }
        for n in nodes { try n.start() }
        var crashedAt: Int?, restarted = false
        for i in 0..<20_000 {
            var running = false
            for (p, n) in nodes.enumerated() {
                if p == 2, crashedAt != nil, !restarted { running = true; continue }
                if try n.poll(wait: 0) { running = true }
            }
            if crashedAt == nil, nodes[2].lastApplied >= 4 {
                crashedAt = i
                network.transport(for: 2).stop()
            }
            if let at = crashedAt, !restarted, i - at >= 100, let (step, bytes) = saved {
                restarted = true
                engines[2] = try Self.engine(peer: 2, c)
                try engines[2].restore(try TrainingCheckpoint.decode(bytes))
                nodes[2] = try node(2, 2)
                try nodes[2].start(firstStep: step)
                running = true
            }
            if !running { break }
            network.advance()
            clock.now += 0.005
        }
        #expect(restarted)
        #expect(nodes.allSatisfy { $0.phase == .done })
        #expect(Set(engines.map { $0.digest() }).count == 1, "\(engines.map { $0.digest() })")
        #expect(nodes[2].replayedSteps > 0)
    }
}
