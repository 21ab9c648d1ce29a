import Testing
@testable import Membership

@Suite struct MembershipTests {
    func hb(_ peer: Int, inc: UInt32 = 1, state: PeerState = .training, step: Int64 = 0) -> Heartbeat {
        Heartbeat(peer: peer, incarnation: inc, state: state, lastAppliedStep: step, digest: 42, loss: 2.5,
                  bytesOut: 1, bytesIn: 2, sentAtMillis: 3)
    }

    @Test func heartbeatRoundTripsAndRejectsGarbage() throws {
        let h = hb(3, inc: 7, state: .catchingUp, step: 99)
        #expect(try Heartbeat.decode(h.encode(), peerCount: 4) == h)
        #expect(throws: Heartbeat.DecodeError.wrongLength(5)) { try Heartbeat.decode([1, 2, 3, 4, 5], peerCount: 4) }
        #expect(throws: Heartbeat.DecodeError.peerOutOfRange(3, peers: 2)) { try Heartbeat.decode(h.encode(), peerCount: 2) }
        var bad = h.encode(); bad[6] = 77
        #expect(throws: Heartbeat.DecodeError.unknownState(77)) { try Heartbeat.decode(bad, peerCount: 4) }
        var rng = SplitMix(state: 2026)
        for _ in 0..<2000 {
            let n = Int.random(in: 0...80, using: &rng)
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? Heartbeat.decode(bytes, peerCount: 8)   // must not crash
        }
    }

    @Test func aliveSuspectDeadThenBackOnNewIncarnation() {
        var m = Membership(me: 0, peers: [0, 1, 2], config: MembershipConfig(heartbeatInterval: 0.25, suspectAfter: 1, deadAfter: 3))
        #expect(m.onHeartbeat(hb(1), now: 0) == [.statusChanged(peer: 1, from: .unknown, to: .alive)])
        #expect(m.onTick(now: 0.9).contains(.statusChanged(peer: 1, from: .alive, to: .suspect)) == false)
        #expect(m.onTick(now: 1.0).contains(.statusChanged(peer: 1, from: .alive, to: .suspect)))
        #expect(m.onTick(now: 2.9).filter { if case .statusChanged = $0 { true } else { false } }.isEmpty)
        #expect(m.onTick(now: 3.0).contains(.statusChanged(peer: 1, from: .suspect, to: .dead)))
        #expect(m.alivePeers == [])
        // A stale heartbeat of the old life is ignored once a newer one was seen.
        let back = m.onHeartbeat(hb(1, inc: 2), now: 5)
        #expect(back.contains(.rejoined(peer: 1, incarnation: 2)))
        #expect(back.contains(.statusChanged(peer: 1, from: .dead, to: .alive)))
        #expect(m.onHeartbeat(hb(1, inc: 1), now: 5.1).isEmpty)
        #expect(m.records[1]?.incarnation == 2)
    }

    @Test func freshHeartbeatRevivesASuspect() {
        var m = Membership(me: 0, peers: [1], config: MembershipConfig())
        _ = m.onHeartbeat(hb(1), now: 0)
        _ = m.onTick(now: 1.5)
        #expect(m.status(of: 1) == .suspect)
        #expect(m.reachablePeers == [1])
        #expect(m.onHeartbeat(hb(1), now: 1.6) == [.statusChanged(peer: 1, from: .suspect, to: .alive)])
    }

    @Test func byeMeansLeftNotDead() {
        var m = Membership(me: 0, peers: [1], config: MembershipConfig())
        _ = m.onHeartbeat(hb(1), now: 0)
        #expect(m.onBye(peer: 1, now: 0.1) == [.statusChanged(peer: 1, from: .alive, to: .left)])
        #expect(m.onTick(now: 10).filter { if case .statusChanged = $0 { true } else { false } }.isEmpty)
    }

    @Test func heartbeatsAreDueEveryInterval() {
        var m = Membership(me: 0, peers: [1], config: MembershipConfig(heartbeatInterval: 0.5))
        var sent = 0
        for i in 0..<40 { if m.onTick(now: Double(i) * 0.125).contains(.sendHeartbeat) { sent += 1 } }
        #expect(sent == 10)
    }

    @Test func adaptiveThresholdTracksASlowLink() {
        var m = Membership(me: 0, peers: [1], config: MembershipConfig(heartbeatInterval: 0.25, suspectAfter: 1, deadAfter: 10, adaptiveK: 4))
        var t = 0.0
        for i in 0..<20 { _ = m.onHeartbeat(hb(1), now: t); t += 2.0 + (i % 2 == 0 ? 0.1 : -0.1) }
        let th = m.suspectThreshold(for: 1)
        #expect(th > 2.0 && th < 10, "threshold \(th)")
        // With the fixed 1 s threshold this silence would be suspect; adaptively it is not.
        #expect(!m.onTick(now: t - 2.0 + 1.5).contains(.statusChanged(peer: 1, from: .alive, to: .suspect)))
    }

    @Test func unknownAndOwnPeersAreIgnored() {
        var m = Membership(me: 0, peers: [1], config: MembershipConfig())
        #expect(m.onHeartbeat(hb(0), now: 0).isEmpty)
        #expect(m.onHeartbeat(hb(9), now: 0).isEmpty)
        #expect(m.silenceOfEveryone(now: 5) == .infinity)
    }
}

/// Seeded generator so the garbage inputs are the same on every run.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
