import DeMo
import Foundation
import Mesh
import Tensors
import Testing
import TinyGPT
@testable import PeerRuntime

/// Issue 12: one hostile-but-authorised peer of four (every frame valid) over the simulated mesh.
/// Whatever it sends, the honest peers apply the same steps (one digest) and keep learning.
@Suite struct PoisonedPeerSimulationTests {
    enum Attack: CustomStringConvertible, Sendable {
        case scaled(Float)      // gradients × factor before DeMo (×−1: gradient ascent)
        case randomDirection    // its coefficients with random signs, same magnitudes
        case copyOfPeer0        // sends what peer 0 sends, bit for bit (same batch, same state)
        case replayFirst        // sends its step-0 update again at every step (a stale replay)
        var description: String {
            switch self {
            case .replayFirst: return "replay"
            case .scaled(let f): return "scaled(\(f))"
            case .randomDirection: return "random"
            case .copyOfPeer0: return "copy"
            }
        }
    }

    /// A `GPTEngine` that computes honestly and sends `tamper(step, body)` instead of its body.
    final class TamperingEngine: StepEngine {
        let inner: GPTEngine
        let tamper: (Int, [UInt8]) throws -> [UInt8]
        init(_ inner: GPTEngine, tamper: @escaping (Int, [UInt8]) throws -> [UInt8]) { self.inner = inner; self.tamper = tamper }
        func contribute(step: Int) throws -> (body: [UInt8], loss: Float) {
            let (body, loss) = try inner.contribute(step: step)
            return (try tamper(step, body), loss)
        }
        func validate(body: [UInt8]) throws { try inner.validate(body: body) }
        func apply(step: Int, contributions: [(peer: Int, body: [UInt8])]) throws { try inner.apply(step: step, contributions: contributions) }
        func snapshot() -> [UInt8] { inner.snapshot() }
        func restore(snapshot: [UInt8]) throws { try inner.restore(snapshot: snapshot) }
        func digest() -> UInt64 { inner.digest() }
        var referenceBytesPerContribution: Int { inner.referenceBytesPerContribution }
        var denseBytesPerContribution: Int { inner.denseBytesPerContribution }
    }

    /// Its coefficients re-signed at random (seeded by step), same magnitudes.
    static func randomSigns(_ inner: GPTEngine, seed: UInt64) -> TamperingEngine {
        let plan = inner.demo!.plan
        return TamperingEngine(inner) { step, body in
            var payload = try DeMoCodec.decode(body, plan: plan)
            var rng = SplitMix64(seed: seed &+ UInt64(step))
            for t in payload.tensors.indices {
                payload.tensors[t].values = payload.tensors[t].values.map { rng.next() & 1 == 0 ? abs($0) : -abs($0) }
            }
            return try DeMoCodec.encode(payload, plan: plan)
        }
    }

    /// Its step-0 update again at every step (a stale replay).
    static func replayingFirst(_ inner: GPTEngine) -> TamperingEngine {
        var first: [UInt8]?
        return TamperingEngine(inner) { _, body in
            if first == nil { first = body }
            return first!
        }
    }

    static let corpus: Corpus = {
        let text = Array(String(repeating: "Now is the winter of our discontent made glorious summer by this sun of York. ", count: 50).utf8)
        return try! Corpus(bytes: text, source: "test", contextLength: 32)
    }()

    func engine(dataOf p: Int, rule: DeMoAggregate) throws -> GPTEngine {
        let config = try GPTConfig.preset(named: "nano")
        return try GPTEngine(model: try GPTModel(config: config, maxBatchSize: 2, seed: 5),
                             sampler: BatchSampler(corpus: Self.corpus, seed: 5, batchSize: 2, seqLen: 32), peer: p,
                             optimizer: .demo(DeMoConfig(decay: 0.999, topk: 8, chunk: 16, weightDecay: 0, valueFormat: .bf16, aggregate: rule)),
                             schedule: .constant(1e-2), clipNorm: 1)
    }

    func validationLoss(_ e: GPTEngine) -> Float {
        let n = e.sampler.validationBatchCount(limit: 4)
        var b = TokenBatch(batchSize: e.sampler.batchSize, seqLen: e.sampler.seqLen)
        var total = 0.0
        for i in 0..<n {
            e.sampler.validationBatch(index: i, of: n, into: &b)
            total += Double(b.inputs.withUnsafeBufferPointer { inp in
                b.targets.withUnsafeBufferPointer { tgt in e.model.forward(inputs: inp, targets: tgt, batch: b.batchSize, seqLen: b.seqLen) }
            })
        }
        return Float(total / Double(n))
    }

    /// Runs 4 peers (peer 3 attacking) for `steps`; returns the honest peers' digests and val loss.
    func run(_ attack: Attack?, rule: DeMoAggregate, seed: UInt64, steps: Int = 12)
        throws -> (digests: Set<UInt64>, loss: Float, initial: Float, named: Set<Int>) {
        let topo = try loopbackTopology(peers: 4)
        let honest = try (0..<3).map { try engine(dataOf: $0, rule: rule) }
        let initial = validationLoss(honest[0])
        let hostile: any StepEngine
        switch attack {
        case nil: hostile = try engine(dataOf: 3, rule: rule)
        case .scaled(let f):
            let e = try engine(dataOf: 3, rule: rule)
            e.gradientScale = f
            hostile = e
        case .randomDirection: hostile = Self.randomSigns(try engine(dataOf: 3, rule: rule), seed: seed)
        case .copyOfPeer0: hostile = try engine(dataOf: 0, rule: rule)
        case .replayFirst: hostile = Self.replayingFirst(try engine(dataOf: 3, rule: rule))
        }
        let cluster = try SimulatedCluster(topology: topo, engines: honest + [hostile], steps: steps, seed: seed)
        let iterations = try cluster.runToEnd(maxIterations: 100_000)
        #expect(iterations < 100_000, "cluster did not finish")
        // Who honest peer 0's content watch named (and did not clear).
        var named = Set<Int>()
        for c in honest[0].takeContentChanges() {
            switch c {
            case .suspected(let v): named.insert(v.peer)
            case .cleared(let p, _): named.remove(p)
            }
        }
        return (Set(honest.map { $0.digest() }), validationLoss(honest[0]), initial, named)
    }

    @Test(arguments: [Attack.scaled(-100), .scaled(100), .scaled(-1), .randomDirection, .copyOfPeer0, .replayFirst])
    func honestPeersAgreeAndKeepLearning(attack: Attack) throws {
        for seed: UInt64 in [3, 4] {
            let r = try run(attack, rule: .clipped, seed: seed)
            #expect(r.digests.count == 1, "\(attack) seed \(seed): honest peers differ")
            #expect(r.loss < r.initial - 0.1, "\(attack) seed \(seed): val loss \(r.initial) → \(r.loss)")
            // Never an honest peer; the negated and the loud ones by name.
            #expect(r.named.isSubset(of: [3]), "\(attack) seed \(seed): named \(r.named)")
            switch attack {
            case .scaled(let f) where f != 1: #expect(r.named == [3], "\(attack) seed \(seed): not named")
            default: break
            }
        }
    }

    /// The contrast: with the plain mean, ×−100 from one peer of four undoes the learning that
    /// the clipped rule keeps.
    @Test func plainMeanIsTakenOverByALoudPeer() throws {
        let honestRun = try run(nil, rule: .clipped, seed: 3)
        let clipped = try run(.scaled(-100), rule: .clipped, seed: 3)
        let mean = try run(.scaled(-100), rule: .mean, seed: 3)
        #expect(mean.loss > clipped.loss + 0.1, "mean \(mean.loss) clipped \(clipped.loss)")
        #expect(clipped.loss < honestRun.initial - 0.1)
        #expect(honestRun.digests.count == 1)
        #expect(honestRun.named.isEmpty, "an honest run names nobody: \(honestRun.named)")
    }
}
