import Foundation
import Membership
import Mesh
import Testing
@testable import PeerRuntime

/// Crash, restart from a checkpoint, catch up (replay or snapshot), train on — on the simulated
/// mesh with a manual clock, over several seeds. No sleeps: time is the loop counter.
@Suite struct RejoinSimulationTests {
    struct Outcome {
        var finalDigests: [UInt64]
        var rejoiner: PeerNode
        var survivorsFinished: Bool
    }

    /// Peer `victim` crashes (kill -9: its transport just stops) once it has applied `crashAt`,
    /// restarts `downIterations` later from its checkpoint of step `checkpointAt`.
    func run(seed: UInt64, peers: Int = 3, steps: Int = 400, replaySteps: Int, checkpointAt: Int = 5, crashAt: Int = 12,
             downIterations: Int = 500, drop: Double = 0, healAt: Int = .max) throws -> Outcome {
        let topo = try loopbackTopology(peers: peers)
        let network = InMemoryNetwork(topology: topo, seed: seed)
        if drop > 0 { network.setDefaultConditions(LinkConditions(dropProbability: drop, delayTicks: 1)) }
        let clock = ManualClock()
        let opts = PeerOptions(steps: steps, membership: MembershipConfig(heartbeatInterval: 0.1, suspectAfter: 0.5, deadAfter: 1.5),
                               deadline: .fixed(seconds: 1), startupGrace: 5, tick: 0, replaySteps: replaySteps, snapshotChunk: 3)
        func makeNode(_ p: Int, engine: HashEngine, incarnation: UInt32) throws -> PeerNode {
            try PeerNode(me: p, runID: 7, peerIDs: topo.peers.map(\.id), incarnation: incarnation,
                         transport: network.transport(for: PeerIndex(p)), engine: engine, options: opts, runDirectory: ProcessInfo.processInfo.environment["SIM_LOGDIR"].map { URL(fileURLWithPath: "\($0)/\(seed)/p\(p)") },
                         worker: SimulatedStepWorker(), clock: { clock.now })
        }
        let victim = peers - 1
        var engines = (0..<peers).map { HashEngine(peer: $0) }
        var nodes = try (0..<peers).map { try makeNode($0, engine: engines[$0], incarnation: 1) }
        var checkpoint: [UInt8]?
        var checkpointStep = checkpointAt
        // The first step at or after `checkpointAt` (on lossy links the victim may pass it by catch-up).
        nodes[victim].onApplied = { s in
            if checkpoint == nil && s >= checkpointAt { checkpoint = engines[victim].snapshot(); checkpointStep = s }
        }
        for n in nodes { try n.start() }
        var crashedAt: Int?
        var restarted = false
        for i in 0..<60_000 {
            var running = false
            for (p, n) in nodes.enumerated() {
                if p == victim, crashedAt != nil, !restarted { running = true; continue }
                if try n.poll(wait: 0) { running = true }
            }
            if crashedAt == nil, nodes[victim].lastApplied >= crashAt {
                crashedAt = i
                network.transport(for: PeerIndex(victim)).stop()     // the process died
            }
            if let c = crashedAt, !restarted, i - c >= downIterations {
                restarted = true
                let e = HashEngine(peer: victim)
                try e.restore(snapshot: checkpoint!)
                engines[victim] = e
                nodes[victim] = try makeNode(victim, engine: e, incarnation: 2)
                try nodes[victim].start(firstStep: checkpointStep + 1)
                running = true
            }
            if !running { break }
            if i == healAt { network.setDefaultConditions(LinkConditions(dropProbability: 0, delayTicks: 1)) }
            network.advance()
            clock.now += 0.005
        }
        return Outcome(finalDigests: engines.map { $0.digest() }, rejoiner: nodes[victim],
                       survivorsFinished: nodes.dropLast().allSatisfy { $0.phase == .done })
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func rejoinByLogReplayLandsOnTheSameDigest(seed: UInt64) throws {
        let o = try run(seed: seed, replaySteps: 1000, crashAt: 8 + Int(seed % 7) * 3, downIterations: 400 + Int(seed) * 37)
        #expect(o.survivorsFinished)
        #expect(Set(o.finalDigests).count == 1, "seed \(seed): \(o.finalDigests)")
        #expect(o.rejoiner.replayedSteps > 0, "seed \(seed): no steps were replayed")
        #expect(o.rejoiner.snapshotsLoaded == 0)
        #expect(o.rejoiner.phase == .done)
    }

    @Test(arguments: [UInt64(11), 12, 13])
    func rejoinBeyondTheRetainedLogUsesAChunkedSnapshot(seed: UInt64) throws {
        let o = try run(seed: seed, replaySteps: 4)
        #expect(Set(o.finalDigests).count == 1, "seed \(seed): \(o.finalDigests)")
        #expect(o.rejoiner.snapshotsLoaded >= 1)
    }

    @Test(arguments: [UInt64(21), 22, 23, 24, 25, 26])
    func afterLossyLinksHealEveryDigestConverges(seed: UInt64) throws {
        // 3% of pub/sub messages lost for the first 3000 iterations (crash and rejoin included):
        // rounds time out with different sets and replicas diverge; once the losses stop, the
        // majority check repairs whoever diverged before the run ends.
        let o = try run(seed: seed, steps: 1200, replaySteps: 64, drop: 0.03, healAt: 3000)
        #expect(Set(o.finalDigests).count == 1, "seed \(seed): \(o.finalDigests)")
    }
}
