import Testing
@testable import Mesh

@Suite struct SequenceTrackerTests {
    @Test func countsGapsAndDuplicates() {
        var t = SequenceTracker()
        #expect(t.observe(origin: 1, incarnation: 0, sequence: 10) == .first)
        #expect(t.observe(origin: 1, incarnation: 0, sequence: 11) == .inOrder)
        #expect(t.observe(origin: 1, incarnation: 0, sequence: 11) == .duplicate)
        #expect(t.observe(origin: 1, incarnation: 0, sequence: 15) == .gap(missing: 3))
        #expect(t.totalGaps == 3)
        #expect(t.observe(origin: 1, incarnation: 0, sequence: 13) == .late)
        #expect(t.observe(origin: 1, incarnation: 0, sequence: 13) == .duplicate)
        #expect(t.totalGaps == 2)
        #expect(t.duplicatesByOrigin[1] == 2)
        // A restart: new incarnation starts afresh, the old one is stale.
        #expect(t.observe(origin: 1, incarnation: 1, sequence: 0) == .first)
        #expect(t.observe(origin: 1, incarnation: 0, sequence: 16) == .staleIncarnation)
        // Far behind the window counts as already seen.
        #expect(t.observe(origin: 1, incarnation: 1, sequence: 500) == .gap(missing: 499))
        #expect(t.observe(origin: 1, incarnation: 1, sequence: 3) == .duplicate)
    }
}

@Suite struct RelayFilterTests {
    func header(_ origin: PeerIndex, step: UInt64, seq: UInt64, kind: MessageKind = .update, inc: UInt32 = 0) -> MessageHeader {
        MessageHeader(kind: kind, runID: 1, origin: origin, incarnation: inc, step: step, sequence: seq, body: [])
    }

    @Test func admitsOnceAndKeepsHeartbeatsOfOneStepApart() {
        var f = RelayFilter()
        #expect(f.admit(header(1, step: 5, seq: 1)) == .new)
        #expect(f.admit(header(1, step: 5, seq: 1)) == .duplicate)
        #expect(f.admit(header(1, step: 5, seq: 2, kind: .heartbeat)) == .new)
        #expect(f.admit(header(1, step: 5, seq: 3, kind: .heartbeat)) == .new)
        #expect(f.admit(header(2, step: 5, seq: 1)) == .new)
    }

    @Test func boundedByStepWindowAndCapacity() {
        var f = RelayFilter(stepWindow: 4, capacityPerOrigin: 10)
        for s in 0..<100 as Range<UInt64> { #expect(f.admit(header(0, step: s, seq: s)) == .new) }
        #expect(f.count <= 5)
        #expect(f.admit(header(0, step: 10, seq: 10)) == .stale)
        for q in 0..<50 as Range<UInt64> { _ = f.admit(header(0, step: 100, seq: 1000 + q)) }
        #expect(f.count <= 10)
        // A restart (new incarnation) resets; the old incarnation is then stale.
        #expect(f.admit(header(0, step: 0, seq: 0, inc: 1)) == .new)
        #expect(f.admit(header(0, step: 200, seq: 9, inc: 0)) == .stale)
    }

    @Test func relayDecisionFollowsTopology() throws {
        let ring = try TopologyTests.shipped("ring8.yaml")
        var relay = Relay(topology: ring, me: 1)
        #expect(relay.decide(header(0, step: 1, seq: 1)) == .deliver(forward: true))
        #expect(relay.decide(header(0, step: 1, seq: 1)) == .duplicate)
        #expect(relay.decide(header(1, step: 1, seq: 1)) == .own)
        #expect(relay.decide(header(2, step: 1, seq: 1, kind: .catchUpReplay)) == .deliver(forward: false))
        let full = try TopologyTests.shipped("local4.yaml")
        var noRelay = Relay(topology: full, me: 1)
        #expect(noRelay.decide(header(0, step: 1, seq: 1)) == .deliver(forward: false))
    }
}

/// Headers come off the wire: extreme steps and sequence numbers must never trap.
@Suite struct HostileHeaderTests {
    @Test func extremeValuesNeverTrap() throws {
        let ring = try TopologyTests.shipped("ring8.yaml")
        var relay = Relay(topology: ring, me: 3)
        var tracker = SequenceTracker()
        var rng = SplitMix64(seed: 42)
        let extremes: [UInt64] = [0, 1, 63, 64, 65, UInt64.max - 64, UInt64.max - 1, UInt64.max]
        for i in 0..<5000 {
            let pick = { (r: inout SplitMix64) -> UInt64 in
                r.next() % 2 == 0 ? extremes[Int(r.next() % UInt64(extremes.count))] : r.next()
            }
            let header = MessageHeader(kind: [.heartbeat, .update, .bye][i % 3], runID: 1,
                                       origin: PeerIndex(rng.next() % 8), incarnation: UInt32(rng.next() % 3),
                                       step: pick(&rng), sequence: pick(&rng), body: [])
            _ = relay.decide(header)
            _ = tracker.observe(origin: header.origin, incarnation: header.incarnation, sequence: header.sequence)
        }
        _ = tracker.totalGaps
    }

    @Test func reorderedFirstMessagesDoNotUnderflow() {
        var t = SequenceTracker()
        #expect(t.observe(origin: 0, incarnation: 0, sequence: 10) == .first)
        #expect(t.observe(origin: 0, incarnation: 0, sequence: 9) == .late)  // overtaken via a relay
        #expect(t.totalGaps == 0)
    }
}
