import DeMo
import Foundation
import Membership
import Mesh
import Tensors
import Testing
import TinyGPT
@testable import PeerRuntime

/// A tiny deterministic engine: its "parameters" are a running hash of every contribution applied,
/// in order. Replicas agree exactly when they applied the same contributions in the same order.
final class HashEngine: StepEngine {
    let peer: Int
    var state: UInt64 = 0x1234
    var digestsByStep: [Int: UInt64] = [:]
    var contributorsByStep: [Int: [Int]] = [:]
    init(peer: Int) { self.peer = peer }

    func contribute(step: Int) throws -> (body: [UInt8], loss: Float) {
        var b = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: UInt64(peer).littleEndian) { b.replaceSubrange(0..<8, with: $0) }
        withUnsafeBytes(of: UInt64(step).littleEndian) { b.replaceSubrange(8..<16, with: $0) }
        return (b, Float(step))
    }
    struct Bad: Error {}
    func validate(body: [UInt8]) throws { if body.count != 16 { throw Bad() } }
    func apply(step: Int, contributions: [(peer: Int, body: [UInt8])]) throws {
        for c in contributions {
            for byte in c.body { state = (state ^ UInt64(byte)) &* 0x100_0000_01B3 }
        }
        digestsByStep[step] = state
        contributorsByStep[step] = contributions.map(\.peer)
    }
    func digest() -> UInt64 { state }
    func snapshot() -> [UInt8] { withUnsafeBytes(of: state.littleEndian) { Array($0) } }
    func restore(snapshot: [UInt8]) throws {
        guard snapshot.count == 8 else { throw Bad() }
        state = snapshot.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }
    var referenceBytesPerContribution: Int { 16 }
    var denseBytesPerContribution: Int { 16 }
}

/// A manual clock shared by the simulated cluster.
final class ManualClock: @unchecked Sendable {
    // Only touched from the test's thread.
    var now = 0.0
}

struct SimulatedCluster {
    let network: InMemoryNetwork
    let nodes: [PeerNode]
    let clock: ManualClock

    init(topology: Topology, engines: [any StepEngine], steps: Int, seed: UInt64) throws {
        let clock = ManualClock()
        let net = InMemoryNetwork(topology: topology, seed: seed)
        network = net
        let opts = PeerOptions(steps: steps, membership: MembershipConfig(heartbeatInterval: 0.1, suspectAfter: 0.5, deadAfter: 1.5),
                               deadline: .fixed(seconds: 2), startupGrace: 5, tick: 0)
        nodes = try topology.peers.map { p in
            try PeerNode(me: Int(p.index), runID: 7, peerIDs: topology.peers.map(\.id), incarnation: 1,
                         transport: net.transport(for: p.index), engine: engines[Int(p.index)], options: opts,
                         runDirectory: nil, worker: SimulatedStepWorker(), clock: { clock.now })
        }
        self.clock = clock
    }

    /// Polls every node in turn and advances the network and clock; bounded by `maxIterations`.
    func runToEnd(maxIterations: Int = 200_000) throws -> Int {
        for n in nodes { try n.start() }
        for i in 0..<maxIterations {
            var running = false
            for n in nodes { if try n.poll(wait: 0) { running = true } }
            if !running { return i }
            network.advance()
            clock.now += 0.005
        }
        return maxIterations
    }
}

/// A topology of `peers` on 127.0.0.1 (ports from `basePort`), full mesh or a ring; shared by the
/// simulated and the real-socket tests.
func loopbackTopology(peers: Int, ring: Bool = false, preset: String = "nano", kind: String = "demo",
                      basePort: Int = 20000, run: String = "sim", deadline: String = "2s") throws -> Topology {
    var yaml = """
    run: \(run)
    seed: 5
    model: { preset: \(preset) }
    data: { corpus: shakespeare, batch_size: 2 }
    optimizer: { kind: \(kind), lr: 3.0e-3, topk: 8, chunk: 16, decay: 0.999, values: bf16, weight_decay: 0.0 }
    steps: 20
    round: { deadline: \(deadline), max_deadline: 5s }
    heartbeat: { interval: 100ms, suspect_after: 500ms, dead_after: 1500ms }
    checkpoint: { every: 50, keep: 3, dir: runs/sim }
    security: { curve: false, keys: keys/ }
    peers:

    """
    for i in 0..<peers {
        let nb = ring ? ", neighbors: [p\((i + peers - 1) % peers), p\((i + 1) % peers)]" : ""
        yaml += "  - { id: p\(i), pub: \"tcp://127.0.0.1:\(basePort + 10 * i)\", sync: \"tcp://127.0.0.1:\(basePort + 10 * i + 1)\"\(nb) }\n"
    }
    return try TopologyParser.parse(yaml: yaml, file: "sim.yaml")
}

@Suite struct ClusterSimulationTests {
    @Test(arguments: [false, true])
    func faultFreeClusterAppliesEveryStepWithEveryPeerAndAgrees(ring: Bool) throws {
        let n = ring ? 5 : 3
        let topo = try loopbackTopology(peers: n, ring: ring)
        let engines = (0..<n).map { HashEngine(peer: $0) }
        let cluster = try SimulatedCluster(topology: topo, engines: engines, steps: 20, seed: 42)
        let iterations = try cluster.runToEnd()
        #expect(iterations < 200_000, "cluster did not finish")
        for step in 0..<20 {
            let digests = Set(engines.map { $0.digestsByStep[step] })
            #expect(digests.count == 1 && digests.first! != nil, "step \(step): digests \(digests)")
            for e in engines { #expect(e.contributorsByStep[step] == Array(0..<n), "step \(step) contributors") }
        }
    }

    @Test func realModelWithDeMoOverSimulatedMeshKeepsReplicasBitIdentical() throws {
        let topo = try loopbackTopology(peers: 3)
        let text = Array(String(repeating: "To be, or not to be, that is the question. ", count: 60).utf8)
        let corpus = try Corpus(bytes: text, source: "test", contextLength: 32)
        let config = try GPTConfig.preset(named: "nano")
        let engines = try (0..<3).map { p in
            let model = try GPTModel(config: config, maxBatchSize: 2, seed: 5)
            return try GPTEngine(model: model, sampler: BatchSampler(corpus: corpus, seed: 5, batchSize: 2, seqLen: 32),
                                 peer: p, optimizer: .demo(DeMoConfig(decay: 0.999, topk: 8, chunk: 16, weightDecay: 0, valueFormat: .bf16)),
                                 schedule: .constant(3e-3), clipNorm: 1)
        }
        let before = engines[0].digest()
        let cluster = try SimulatedCluster(topology: topo, engines: engines, steps: 20, seed: 9)
        _ = try cluster.runToEnd()
        let digests = Set(engines.map { $0.digest() })
        #expect(digests.count == 1)
        #expect(digests.first != before, "parameters never moved")
        // Different peers read different data, so the residuals differ while the parameters agree.
        #expect(engines[0].demo!.residual != engines[1].demo!.residual)
    }
}
