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

/// A donor that forges a consistent lie: its snapshot is another state *and* the digest it
/// announces is that state's, so the requester's own check (restored digest = announced) passes.
/// Only the other peers' reports at that step can tell (issue 16 item 3).
final class ForgingSnapshotEngine: StepEngine, @unchecked Sendable {
    let inner: HashEngine
    private var forgeNext = false
    init(peer: Int) { inner = HashEngine(peer: peer) }
    func contribute(step: Int) throws -> (body: [UInt8], loss: Float) { try inner.contribute(step: step) }
    func validate(body: [UInt8]) throws { try inner.validate(body: body) }
    func apply(step: Int, contributions: [(peer: Int, body: [UInt8])]) throws { try inner.apply(step: step, contributions: contributions) }
    /// Honest everywhere but right after a snapshot, where the serving job reads the digest to announce.
    func digest() -> UInt64 {
        defer { forgeNext = false }
        return forgeNext ? inner.state ^ 0xBAD : inner.digest()
    }
    func snapshot() -> [UInt8] {
        forgeNext = true
        return withUnsafeBytes(of: (inner.state ^ 0xBAD).littleEndian) { Array($0) }
    }
    func restore(snapshot: [UInt8]) throws { try inner.restore(snapshot: snapshot) }
    var referenceBytesPerContribution: Int { 16 }
    var denseBytesPerContribution: Int { 16 }
}

@Suite struct MajorityCheckedCatchUpTests {
    @Test func aConsistentlyForgedSnapshotIsRefusedByTheMajorityReports() throws {
        let topo = try loopbackTopology(peers: 3)
        let network = InMemoryNetwork(topology: topo, seed: 23)
        let clock = ManualClock()
        let opts = PeerOptions(steps: 60, membership: MembershipConfig(heartbeatInterval: 0.1, suspectAfter: 0.5, deadAfter: 1.5),
                               deadline: .fixed(seconds: 1), startupGrace: 1, tick: 0, replaySteps: 0)
        let engines: [any StepEngine] = [ForgingSnapshotEngine(peer: 0), HashEngine(peer: 1), HashEngine(peer: 2)]
        let nodes = try simulatedNodes(topo, network, clock, opts, engines: engines)
        try nodes[0].start(); try nodes[1].start()
        func turn(_ active: [PeerNode]) throws {
            for n in active { _ = try n.poll(wait: 0) }
            network.advance()
            clock.now += 0.005
        }
        for _ in 0..<20_000 where nodes[1].lastApplied < 20 { try turn(Array(nodes[0...1])) }
        #expect(nodes[1].lastApplied >= 20)
        try nodes[2].start()
        // Let p2 hear the others' reports first, then send it to the forger.
        for _ in 0..<100 { try turn(nodes) }
        nodes[2].beginCatchUp(donor: 0, snapshot: true, reason: "test: ask the forger")
        for _ in 0..<40_000 where nodes.contains(where: { $0.phase != .done }) { try turn(nodes) }
        #expect(nodes[2].distrustedDonors == [0])
        #expect(nodes.allSatisfy { $0.phase == .done })
        #expect(nodes.allSatisfy { $0.lastApplied == 59 })
        #expect(Set(nodes.map(\.digest)).count == 1, "\(nodes.map(\.digest))")
        #expect(nodes[2].snapshotsLoaded >= 2, "the forged one, refused by the majority, then an honest one")
    }
}

@Suite struct ReportedDigestsTests {
    /// (reports as peer → digest at step 7, voters, digest checked, expected verdict kind)
    @Test(arguments: [
        ([0: UInt64(1)], [0], UInt64(1), "confirmed"),          // two peers: the donor's word is all there is
        ([0: 1, 1: 1], [0, 1], 1, "confirmed"),                 // three peers: both others agree
        ([0: 1, 1: 2], [0, 1], 1, "refuted"),                   // the other one contradicts the donor
        ([0: 1], [0, 1], 1, "undecided"),                       // the other one has not reported yet
        ([0: 1, 1: 1], [0, 1, 2], 1, "confirmed"),              // four peers: 2 of 3 is a majority
        ([0: 1, 1: 2, 2: 2], [0, 1, 2], 1, "refuted"),
        ([0: 1, 1: 2], [0, 1, 2], 1, "undecided"),              // the third decides
        ([0: 1, 3: 1], [0, 1, 2], 1, "undecided"),              // p3 is no voter (dead or distrusted)
    ] as [([Int: UInt64], [Int], UInt64, String)])
    func verdicts(reports: [Int: UInt64], voters: [Int], digest: UInt64, expected: String) {
        var r = ReportedDigests()
        for (p, d) in reports { r.record(peer: p, step: 7, digest: d) }
        r.record(peer: 1, step: 8, digest: digest)   // other steps never count
        let kind: String
        switch r.verdict(step: 7, digest: digest, voters: voters) {
        case .confirmed: kind = "confirmed"
        case .refuted: kind = "refuted"
        case .undecided: kind = "undecided"
        }
        #expect(kind == expected)
    }

    @Test func memoryIsBoundedAndWireStepsAreChecked() {
        var r = ReportedDigests(capacity: 4)
        for s in 0..<10 { r.record(peer: 0, step: s, digest: UInt64(s)) }
        #expect(r.digest(of: 0, at: 5) == nil && r.digest(of: 0, at: 6) == 6 && r.digest(of: 0, at: 9) == 9)
        r.record(peer: 1, step: Int(Int32.max), digest: 1)
        r.record(peer: 1, step: -1, digest: 1)
        #expect(r.digest(of: 1, at: Int(Int32.max)) == nil && r.digest(of: 1, at: -1) == nil)
        r.forget(peer: 0)
        #expect(r.digest(of: 0, at: 9) == nil)
    }
}

@Suite struct StateDigestTests {
    @Test func isTheFirst64BitsOfSHA256() {
        // SHA-256("abc") = ba7816bf 8f01cfea …, read little-endian.
        let d = Array("abc".utf8).withUnsafeBytes { StateDigest.of([$0]) }
        #expect(d == 0xeacf_018f_bf16_78ba)
    }

    @Test func anyBitOfAnyPartChangesIt() {
        var a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6]
        func digest() -> UInt64 { a.withUnsafeBytes { x in b.withUnsafeBytes { y in StateDigest.of([x, y]) } } }
        let d0 = digest()
        b[1] = Float(bitPattern: b[1].bitPattern ^ 1)
        let d1 = digest()
        a[0] = Float(bitPattern: a[0].bitPattern ^ 1)
        #expect(d0 != d1 && d1 != digest())
    }
}

/// Plaintext: anyone can send a catch-up request naming any origin. Transfers are keyed by origin
/// and connection, so a forged request never replaces the real requester's transfer, a peer has at
/// most two at once, and one nobody drives goes away (issue 16 item 4).
@Suite struct PlaintextTransferTests {
    @Test func aForgedRequestDoesNotReplaceAPendingTransfer() throws {
        let topo = try loopbackTopology(peers: 2)
        let network = InMemoryNetwork(topology: topo, seed: 29)
        let clock = ManualClock()
        let opts = PeerOptions(steps: 200, membership: MembershipConfig(heartbeatInterval: 0.1, suspectAfter: 0.5, deadAfter: 1.5),
                               deadline: .fixed(seconds: 1), startupGrace: 1, tick: 0, replaySteps: 64)
        let nodes = try simulatedNodes(topo, network, clock, opts, engines: [HashEngine(peer: 0), HashEngine(peer: 1)])
        for n in nodes { try n.start() }
        for _ in 0..<20_000 where nodes[0].lastApplied < 20 {
            for n in nodes { _ = try n.poll(wait: 0) }
            network.advance()
            clock.now += 0.005
        }
        let donor = nodes[0]
        #expect(donor.lastApplied >= 20)
        func request(_ route: [UInt8], sequence: UInt64) -> Envelope {
            .make(kind: .catchUpRequest, runID: 7, origin: 1, incarnation: 1, step: 2, sequence: sequence, body: [0])
        }
        let real = ReplyRoute(identity: [1]), forged = ReplyRoute(identity: [9]), third = ReplyRoute(identity: [10])
        donor.serveCatchUp(request(real.identity, sequence: 1), route: real)
        let key = TransferKey(requester: 1, route: real)
        let before = try #require(donor.outgoingSnapshots[key])
        #expect(before.next == PeerNode.snapshotWindow, "the window went out; the rest waits for credit")
        donor.serveCatchUp(request(forged.identity, sequence: 2), route: forged)
        #expect(donor.outgoingSnapshots[key]?.next == before.next, "the real transfer is untouched")
        #expect(donor.outgoingSnapshots[TransferKey(requester: 1, route: forged)] != nil)
        donor.serveCatchUp(request(third.identity, sequence: 3), route: third)
        #expect(donor.outgoingSnapshots[TransferKey(requester: 1, route: third)] == nil, "two transfers per origin at most")
        donor.dropIdleTransfers(now: clock.now + PeerNode.transferIdleLimit + 1)
        #expect(donor.outgoingSnapshots.isEmpty)
    }
}
