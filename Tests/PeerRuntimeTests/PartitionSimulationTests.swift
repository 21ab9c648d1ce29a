import Foundation
import Membership
import Mesh
import Testing
@testable import PeerRuntime

/// Partitions and a donor that dies mid-transfer, on the simulated mesh (manual clock, seeded).
@Suite struct PartitionSimulationTests {
    func options(steps: Int = 400, replaySteps: Int = 64, chunk: Int = 256 << 10) -> PeerOptions {
        PeerOptions(steps: steps, membership: MembershipConfig(heartbeatInterval: 0.1, suspectAfter: 0.5, deadAfter: 1.5),
                    deadline: .fixed(seconds: 1), startupGrace: 5, tick: 0, replaySteps: replaySteps, snapshotChunk: chunk)
    }

    @Test(arguments: [UInt64(31), 32, 33])
    func isolatedPeerTrainsAloneThenAdoptsTheMajority(seed: UInt64) throws {
        let topo = try loopbackTopology(peers: 3)
        let network = InMemoryNetwork(topology: topo, seed: seed)
        let clock = ManualClock()
        let engines = (0..<3).map { HashEngine(peer: $0) }
        let nodes = try (0..<3).map { p in
            try PeerNode(me: p, runID: 7, peerIDs: topo.peers.map(\.id), incarnation: 1,
                         transport: network.transport(for: PeerIndex(p)), engine: engines[p], options: options(steps: 3000),
                         runDirectory: ProcessInfo.processInfo.environment["SIM_LOGDIR"].map { URL(fileURLWithPath: "\($0)/part\(seed)/p\(p)") }, worker: SimulatedStepWorker(), clock: { clock.now })
        }
        var isolatedFailsafe = 0
        nodes[2].onIsolated = { _ in isolatedFailsafe += 1 }
        for n in nodes { try n.start() }
        var sawIsolated = false
        let cut = 300 + Int(seed % 5) * 20, heal = cut + 900
        for i in 0..<80_000 {
            var running = false
            for n in nodes { if try n.poll(wait: 0) { running = true } }
            if !running { break }
            if i == cut { network.partition([[0, 1], [2]]) }
            if i == heal { network.heal() }
            if nodes[2].state == .isolated { sawIsolated = true }
            network.advance()
            clock.now += 0.005
        }
        #expect(sawIsolated, "seed \(seed): p2 never went isolated")
        #expect(isolatedFailsafe >= 1, "seed \(seed): no failsafe checkpoint")
        #expect(nodes.allSatisfy { $0.phase == .done }, "seed \(seed): \(nodes.map(\.phase))")
        #expect(nodes[2].snapshotsLoaded >= 1, "seed \(seed): p2 did not adopt the majority by snapshot")
        #expect(Set(engines.map { $0.digest() }).count == 1, "seed \(seed): \(engines.map { $0.digest() })")
    }

    @Test(arguments: [UInt64(41), 42])
    func donorDyingMidTransferIsReplaced(seed: UInt64) throws {
        let topo = try loopbackTopology(peers: 4)
        let network = InMemoryNetwork(topology: topo, seed: seed)
        let clock = ManualClock()
        // 8-byte snapshots in 1-byte chunks, 4 in flight: the transfer spans several credit grants.
        let opts = options(replaySteps: 4, chunk: 1)
        var engines = (0..<4).map { HashEngine(peer: $0) }
        func node(_ p: Int, _ inc: UInt32) throws -> PeerNode {
            try PeerNode(me: p, runID: 7, peerIDs: topo.peers.map(\.id), incarnation: inc,
                         transport: network.transport(for: PeerIndex(p)), engine: engines[p], options: opts,
                         runDirectory: nil, worker: SimulatedStepWorker(), clock: { clock.now })
        }
        var nodes = try (0..<4).map { try node($0, 1) }
        var checkpoint: [UInt8]?
        nodes[3].onApplied = { s in if s == 5 { checkpoint = engines[3].snapshot() } }
        for n in nodes { try n.start() }
        var dead: Set<Int> = []
        var crashedAt: Int?, restarted = false, killedDonor: Int?
        for i in 0..<80_000 {
            var running = false
            for (p, n) in nodes.enumerated() where !dead.contains(p) { if try n.poll(wait: 0) { running = true } }
            if crashedAt == nil, nodes[3].lastApplied >= 12 {
                crashedAt = i
                dead.insert(3)
                network.transport(for: 3).stop()
            }
            if let c = crashedAt, !restarted, i - c >= 500 {
                restarted = true
                dead.remove(3)
                engines[3] = HashEngine(peer: 3)
                try engines[3].restore(snapshot: checkpoint!)
                nodes[3] = try node(3, 2)
                try nodes[3].start(firstStep: 6)
            }
            // The first donor the rejoiner asks dies at once.
            if restarted, killedDonor == nil, case .catchingUp(let d, _) = nodes[3].phase {
                killedDonor = d
                dead.insert(d)
                network.transport(for: PeerIndex(d)).stop()
            }
            if !running && (crashedAt == nil || restarted) { break }
            network.advance()
            clock.now += 0.005
        }
        let alive = (0..<4).filter { !dead.contains($0) }
        #expect(killedDonor != nil)
        #expect(alive.count == 3 && alive.contains(3))
        #expect(alive.allSatisfy { nodes[$0].phase == .done }, "seed \(seed): \(alive.map { nodes[$0].phase })")
        #expect(nodes[3].snapshotsLoaded >= 1)
        #expect(Set(alive.map { engines[$0].digest() }).count == 1, "seed \(seed)")
    }
}
