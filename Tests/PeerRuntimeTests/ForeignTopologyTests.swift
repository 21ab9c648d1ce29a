import Foundation
import Membership
import Mesh
import Testing
@testable import PeerRuntime

/// A peer started from a different copy of the topology: every side names the field that differs,
/// nobody trains, and every peer ends without success (issue 17).
@Suite struct ForeignTopologyTests {
    @Test func fingerprintsNameTheFieldsThatDiffer() throws {
        let a = try loopbackTopology(peers: 3)
        var b = a
        b.optimizer.lr = 1.0e-3
        b.data.batchSize = 8
        let fa = a.fingerprint(peerID: "p0"), fb = b.fingerprint(peerID: "p2")
        #expect(fa.runID != fb.runID)
        let d = fa.differences(from: fb)
        #expect(d.map(\.field) == ["optimizer.lr", "data.batch_size"])
        #expect(d[0].description == "optimizer.lr 0.003 here, 0.001 there")
        #expect(fa.differences(from: a.fingerprint(peerID: "p1")).isEmpty)
        let decoded = try RunFingerprint.decode(fb.encode())
        #expect(decoded == fb)
        // Bounded and strict: garbage is refused, never trusted.
        #expect(throws: ByteReadError.self) { try RunFingerprint.decode(Array(fb.encode().dropLast())) }
        #expect(throws: ByteReadError.self) { try RunFingerprint.decode([1, 0xff, 0xff]) }
        #expect(throws: ByteReadError.self) { try RunFingerprint.decode(fb.encode() + [0]) }
    }

    @Test(arguments: [UInt64(1), 2])
    func peersOfTwoTopologiesNameTheDifferenceAndNeitherTrains(seed: UInt64) throws {
        let topo = try loopbackTopology(peers: 3)
        var other = topo
        other.optimizer.lr = 1.0e-3
        let network = InMemoryNetwork(topology: topo, seed: seed)
        let clock = ManualClock()
        let engines = (0..<3).map { HashEngine(peer: $0) }
        var notes: [Int: [String]] = [:]
        let nodes = try (0..<3).map { p in
            let t = p == 2 ? other : topo
            var o = PeerOptions(steps: 20, membership: MembershipConfig(heartbeatInterval: 0.1, suspectAfter: 0.5, deadAfter: 1.5),
                                deadline: .fixed(seconds: 1), startupGrace: 3, tick: 0)
            o.giveUpAfter = 6
            o.endpoints = t.peers.map { $0.pub.description }
            o.fingerprint = t.fingerprint(peerID: "")
            let n = try PeerNode(me: p, runID: t.runID, peerIDs: t.peers.map(\.id), incarnation: 1,
                                 transport: network.transport(for: PeerIndex(p)), engine: engines[p], options: o,
                                 runDirectory: nil, worker: SimulatedStepWorker(), clock: { clock.now })
            n.onForeign = { notes[p, default: []].append($0) }
            return n
        }
        for n in nodes { try n.start() }
        var firstNote: [Int: Double] = [:]
        for _ in 0..<4000 {
            var running = false
            for n in nodes { if try n.poll(wait: 0) { running = true } }
            for p in 0..<3 where notes[p] != nil && firstNote[p] == nil { firstNote[p] = clock.now }
            if !running { break }
            network.advance()
            clock.now += 0.005
        }
        #expect(nodes.allSatisfy { $0.phase == .done })
        #expect(engines.allSatisfy { $0.contributorsByStep.isEmpty }, "nobody trains a step: \(engines.map(\.contributorsByStep.count))")
        for p in 0..<3 {
            #expect((firstNote[p] ?? .infinity) < 10, "p\(p) named the other topology after \(firstNote[p] ?? .infinity) s")
            #expect(notes[p]?.first?.contains("optimizer.lr") == true, "\(notes[p] ?? [])")
            guard case .foreignTopology(_, let detail)? = nodes[p].outcome else {
                Issue.record("p\(p) outcome \(String(describing: nodes[p].outcome))"); continue
            }
            #expect(detail.contains("uses another topology: optimizer.lr"))
            #expect(nodes[p].outcome?.isSuccess == false)
        }
        #expect(notes[2]?.contains { $0.hasPrefix("p0 at tcp://127.0.0.1:20000") } == true, "\(notes[2] ?? [])")
    }

    @Test func otherDataSettingsWithTheSameRunIDAreAWarningNotABlock() throws {
        let topo = try loopbackTopology(peers: 2)
        var other = topo
        other.data.batchSize = 16   // not in the run id
        #expect(other.runID == topo.runID)
        let network = InMemoryNetwork(topology: topo, seed: 3)
        let clock = ManualClock()
        let engines = (0..<2).map { HashEngine(peer: $0) }
        var notes: [String] = []
        let nodes = try (0..<2).map { p in
            let t = p == 1 ? other : topo
            var o = PeerOptions(steps: 10, membership: MembershipConfig(heartbeatInterval: 0.1, suspectAfter: 0.5, deadAfter: 1.5),
                                deadline: .fixed(seconds: 1), startupGrace: 3, tick: 0, finalLinger: 1)
            o.fingerprint = t.fingerprint(peerID: "")
            let n = try PeerNode(me: p, runID: t.runID, peerIDs: t.peers.map(\.id), incarnation: 1,
                                 transport: network.transport(for: PeerIndex(p)), engine: engines[p], options: o,
                                 runDirectory: nil, worker: SimulatedStepWorker(), clock: { clock.now })
            if p == 0 { n.onForeign = { notes.append($0) } }
            return n
        }
        for n in nodes { try n.start() }
        for _ in 0..<20_000 {
            var running = false
            for n in nodes { if try n.poll(wait: 0) { running = true } }
            if !running { break }
            network.advance()
            clock.now += 0.005
        }
        #expect(nodes.allSatisfy { $0.outcome?.isSuccess == true }, "\(nodes.map { String(describing: $0.outcome) })")
        #expect(notes.first?.contains("trains with other settings: data.batch_size 2 here, 16 there") == true, "\(notes)")
    }
}
