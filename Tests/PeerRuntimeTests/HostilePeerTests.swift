import DeMo
import Foundation
import Membership
import Mesh
import Tensors
import Testing
import TinyGPT
@testable import PeerRuntime

/// A peer never crashes on what another peer sends: two honest peers train on the simulated mesh
/// while peer 2 floods them with malformed and hostile messages.
@Suite struct HostilePeerTests {
    @Test func honestPeersSurviveCountAndAgree() throws {
        let topo = try loopbackTopology(peers: 3)
        let network = InMemoryNetwork(topology: topo, seed: 99)
        let clock = ManualClock()
        let text = Array(String(repeating: "Is this a dagger which I see before me, the handle toward my hand? ", count: 40).utf8)
        let corpus = try Corpus(bytes: text, source: "test", contextLength: 32)
        let config = try GPTConfig.preset(named: "nano")
        let demoConfig = DeMoConfig(decay: 0.999, topk: 8, chunk: 16, weightDecay: 0, valueFormat: .f32)
        func engine(_ p: Int) throws -> GPTEngine {
            try GPTEngine(model: try GPTModel(config: config, maxBatchSize: 2, seed: 5),
                          sampler: BatchSampler(corpus: corpus, seed: 5, batchSize: 2, seqLen: 32), peer: p,
                          optimizer: .demo(demoConfig), schedule: .constant(3e-3), clipNorm: 1)
        }
        let engines = try [engine(0), engine(1)]
        let opts = PeerOptions(steps: 80, membership: MembershipConfig(heartbeatInterval: 0.1, suspectAfter: 0.5, deadAfter: 1.5),
                               deadline: .fixed(seconds: 1), startupGrace: 1, tick: 0)
        let nodes = try (0..<2).map { p in
            try PeerNode(me: p, runID: 7, peerIDs: topo.peers.map(\.id), incarnation: 1,
                         transport: network.transport(for: PeerIndex(p)), engine: engines[p], options: opts,
                         runDirectory: nil, worker: SimulatedStepWorker(), clock: { clock.now })
        }
        // The attacker: a real payload to mutate, and one whose values are NaN.
        let attacker = network.transport(for: 2)
        try attacker.start()
        let own = try engine(2)
        let valid = try own.contribute(step: 0).body
        var plan = try DeMoOptimizer(layout: own.model.layout, config: demoConfig)
        let grads = [Float](repeating: 0.5, count: own.model.layout.totalCount)
        var payload = try grads.withUnsafeBufferPointer { try plan.prepare(gradients: $0, lr: 1e-3) }
        payload.tensors[0].values[0] = 1234.5
        var nanBody = try DeMoCodec.encode(payload, plan: plan.plan)
        let marker = withUnsafeBytes(of: Float(1234.5).bitPattern.littleEndian) { Array($0) }
        let at = (0...(nanBody.count - 4)).first { Array(nanBody[$0..<($0 + 4)]) == marker }!
        withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { nanBody.replaceSubrange(at..<(at + 4), with: $0) }
        var rng = SeededRNG(seed: 3)
        var sequence: UInt64 = 0
        func send(_ kind: MessageKind, step: UInt64, _ body: [UInt8]) {
            sequence += 1
            try? attacker.publish(Envelope.make(kind: kind, runID: 7, origin: 2, incarnation: 1, step: step,
                                                sequence: sequence, body: body))
        }
        func prefixed(_ b: [UInt8]) -> [UInt8] { Contribution(id: ContributionID(origin: 2, incarnation: 1, tag: 0), base: -1, baseDigest: 0, payload: b).encodeBody() }

        for n in nodes { try n.start() }
        var sent = 0
        for i in 0..<40_000 {
            var running = false
            for n in nodes { if try n.poll(wait: 0) { running = true } }
            if !running { break }
            if i % 5 == 0 {
                let step = UInt64(max(0, nodes[0].lastApplied + 1))
                switch sent % 8 {
                case 0: send(.update, step: step, prefixed((0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }))
                case 1: send(.update, step: step, prefixed(nanBody))                         // NaN values
                case 2:
                    var m = valid
                    for _ in 0..<3 { m[Int(rng.next() % UInt64(m.count))] ^= UInt8(1 << (rng.next() % 8)) }
                    send(.update, step: step, m)                                              // mutated
                case 3: send(.update, step: step + 3, prefixed(valid))                        // ahead, from a peer nobody expects
                case 4: send(.update, step: step, valid); send(.update, step: step, valid)   // duplicates
                case 5: send(.heartbeat, step: step, (0..<58).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                case 6: send(.update, step: step, Array(valid.prefix(Int(rng.next() % UInt64(valid.count)))))  // truncated
                default: send(.bye, step: step, [1, 2, 3])
                }
                sent += 1
            }
            network.advance()
            clock.now += 0.005
        }
        // Last: a step far beyond anything (the transport's relay filter then treats this origin's
        // older steps as stale — it only silences the sender).
        send(.update, step: 1 << 40, prefixed(valid))
        network.advance()
        #expect(nodes.allSatisfy { $0.phase == .done }, "honest peers did not finish")
        #expect(nodes.allSatisfy { $0.lastApplied == 79 })
        #expect(engines[0].digest() == engines[1].digest())
        #expect(nodes.allSatisfy { $0.invalidBodies > 50 }, "\(nodes.map(\.invalidBodies))")
        #expect(sent > 60)
    }

    @Test func aHeartbeatFloodIsLoggedAtMostTenTimesASecond() throws {
        let topo = try loopbackTopology(peers: 3)
        let network = InMemoryNetwork(topology: topo, seed: 5)
        let clock = ManualClock()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-flood-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let opts = PeerOptions(steps: 1_000_000, membership: MembershipConfig(heartbeatInterval: 0.25, suspectAfter: 1, deadAfter: 3),
                               deadline: .fixed(seconds: 1), startupGrace: 100, tick: 0)
        let node = try PeerNode(me: 0, runID: 7, peerIDs: topo.peers.map(\.id), incarnation: 1,
                                transport: network.transport(for: 0), engine: HashEngine(peer: 0), options: opts,
                                runDirectory: dir, worker: SimulatedStepWorker(), clock: { clock.now })
        let attacker = network.transport(for: 2)
        try attacker.start()
        try node.start()
        // Two seconds of valid heartbeats from p2, one every 5 ms (50 times its interval).
        for i in 0..<400 {
            let hb = Heartbeat(peer: 2, incarnation: 1, state: .joining, lastAppliedStep: -1, digest: 0, loss: .nan,
                               bytesOut: 0, bytesIn: 0, sentAtMillis: 0, heard: 0)
            try attacker.publish(Envelope.make(kind: .heartbeat, runID: 7, origin: 2, incarnation: 1, step: 0,
                                               sequence: UInt64(i + 1), body: hb.encode()))
            _ = try node.poll(wait: 0)
            network.advance()
            clock.now += 0.005
        }
        let lines = try String(contentsOf: dir.appendingPathComponent("heartbeats.jsonl"), encoding: .utf8)
            .split(separator: "\n").filter { $0.contains("\"received\"") && $0.contains("\"from\":\"p2\"") }
        #expect(lines.count >= 10, "still logged: \(lines.count)")
        #expect(lines.count <= 22, "\(lines.count) lines for 400 heartbeats in 2 s")
    }
}
