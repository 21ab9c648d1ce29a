import Foundation
import Membership
import Mesh
import Testing
@testable import PeerRuntime

/// Issue 16 item 4: a flood of catch-up requests from one requester buys a bounded answer — at most
/// `CatchUpBudget.capacity` requests at once, each answered with at most the credit window of
/// replayed steps until the requester grants more.
/// Peers 0..<engines.count of `topo` on `network`, under `clock`, on simulated workers.
func simulatedNodes(_ topo: Topology, _ network: InMemoryNetwork, _ clock: ManualClock, _ opts: PeerOptions,
                    engines: [any StepEngine]) throws -> [PeerNode] {
    try engines.indices.map { p in
        try PeerNode(me: p, runID: 7, peerIDs: topo.peers.map(\.id), incarnation: 1,
                     transport: network.transport(for: PeerIndex(p)), engine: engines[p], options: opts,
                     runDirectory: nil, worker: SimulatedStepWorker(), clock: { clock.now })
    }
}

@Suite struct CatchUpBoundsTests {
    @Test func aReplayRequestFloodIsAnsweredWithABoundedNumberOfSteps() throws {
        let topo = try loopbackTopology(peers: 3)
        let network = InMemoryNetwork(topology: topo, seed: 11)
        let clock = ManualClock()
        let opts = PeerOptions(steps: 60, membership: MembershipConfig(heartbeatInterval: 0.1, suspectAfter: 0.5, deadAfter: 1.5),
                               deadline: .fixed(seconds: 1), startupGrace: 1, tick: 0)
        let nodes = try simulatedNodes(topo, network, clock, opts, engines: [HashEngine(peer: 0), HashEngine(peer: 1)])
        let attacker = network.transport(for: 2)
        try attacker.start()
        for n in nodes { try n.start() }
        func turn() throws {
            for n in nodes { _ = try n.poll(wait: 0) }
            network.advance()
            clock.now += 0.005
        }
        for _ in 0..<20_000 where nodes[0].lastApplied < 30 { try turn() }
        #expect(nodes[0].lastApplied >= 30)
        _ = attacker.events(timeout: .zero)
        // 30 requests for a replay of every retained step, all at once; never any credit.
        for i in 0..<30 {
            try attacker.request(Envelope.make(kind: .catchUpRequest, runID: 7, origin: 2, incarnation: 1, step: 1,
                                               sequence: UInt64(i + 1), body: [0]), from: 0)
        }
        var replays = 0, ends = 0
        for _ in 0..<200 {
            try turn()
            for case .message(let env, _) in attacker.events(timeout: .zero) {
                if env.header.kind == .catchUpReplay { replays += 1 }
                if env.header.kind == .catchUpEnd { ends += 1 }
            }
        }
        let window = PeerNode.snapshotWindow, budget = Int(CatchUpBudget.capacity)
        #expect(replays > 0, "the first requests are served")
        #expect(replays <= budget * window, "\(replays) replayed steps for 30 requests")
        #expect(ends == 0, "no transfer finished without credit")
        #expect(nodes[0].requestsDropped >= 30 - budget - 1)
        // The honest run goes on and agrees.
        for _ in 0..<20_000 where nodes.contains(where: { $0.phase != .done }) { try turn() }
        #expect(nodes.allSatisfy { $0.lastApplied == 59 })
        #expect(nodes[0].digest == nodes[1].digest)
    }

    @Test func theBudgetRefillsWithTime() {
        var b = CatchUpBudget(at: 0)
        let first = (0..<10).filter { _ in b.take(now: 0) }.count
        #expect(first == Int(CatchUpBudget.capacity))
        let refilled = b.take(now: 0.5), again = b.take(now: 0.5)
        #expect(refilled && !again, "2/s: one more after half a second, not two")
        let later = (0..<10).filter { _ in b.take(now: 100) }.count
        #expect(later == Int(CatchUpBudget.capacity), "the bucket holds at most its capacity")
    }
}

/// A donor whose snapshot is not the state it announces (issue 16 item 3).
final class LyingSnapshotEngine: StepEngine {
    let inner: HashEngine
    init(peer: Int) { inner = HashEngine(peer: peer) }
    func contribute(step: Int) throws -> (body: [UInt8], loss: Float) { try inner.contribute(step: step) }
    func validate(body: [UInt8]) throws { try inner.validate(body: body) }
    func apply(step: Int, contributions: [(peer: Int, body: [UInt8])]) throws { try inner.apply(step: step, contributions: contributions) }
    func digest() -> UInt64 { inner.digest() }
    /// Another state than `digest()` says: what an attacker's weights would be.
    func snapshot() -> [UInt8] { withUnsafeBytes(of: (inner.state ^ 0xBAD).littleEndian) { Array($0) } }
    func restore(snapshot: [UInt8]) throws { try inner.restore(snapshot: snapshot) }
    var referenceBytesPerContribution: Int { 16 }
    var denseBytesPerContribution: Int { 16 }
}

@Suite struct LyingDonorTests {
    @Test func aDonorServingAnotherStateIsRefusedDistrustedAndReplaced() throws {
        let topo = try loopbackTopology(peers: 3)
        let network = InMemoryNetwork(topology: topo, seed: 21)
        let clock = ManualClock()
        // No replay log: a late peer must take a snapshot.
        let opts = PeerOptions(steps: 60, membership: MembershipConfig(heartbeatInterval: 0.1, suspectAfter: 0.5, deadAfter: 1.5),
                               deadline: .fixed(seconds: 1), startupGrace: 1, tick: 0, replaySteps: 0)
        let engines: [any StepEngine] = [LyingSnapshotEngine(peer: 0), HashEngine(peer: 1), HashEngine(peer: 2)]
        let nodes = try simulatedNodes(topo, network, clock, opts, engines: engines)
        try nodes[0].start(); try nodes[1].start()
        func turn(_ active: [PeerNode]) throws {
            for n in active { _ = try n.poll(wait: 0) }
            network.advance()
            clock.now += 0.005
        }
        for _ in 0..<20_000 where nodes[1].lastApplied < 20 { try turn(Array(nodes[0...1])) }
        #expect(nodes[1].lastApplied >= 20)
        // p2 joins late and is sent to the liar first.
        try nodes[2].start()
        nodes[2].beginCatchUp(donor: 0, snapshot: true, reason: "test: ask the liar")
        for _ in 0..<40_000 where nodes.contains(where: { $0.phase != .done }) { try turn(nodes) }
        #expect(nodes[2].distrustedDonors == [0])
        #expect(nodes.allSatisfy { $0.phase == .done })
        #expect(nodes.allSatisfy { $0.lastApplied == 59 })
        #expect(Set(nodes.map(\.digest)).count == 1, "\(nodes.map(\.digest))")
        #expect(nodes[2].snapshotsLoaded >= 2, "the liar's, refused, then an honest one")
    }
}
