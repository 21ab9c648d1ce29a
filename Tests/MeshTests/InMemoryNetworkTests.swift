import Testing
@testable import Mesh

@Suite struct InMemoryNetworkTests {
    static let run: UInt64 = 99

    func update(_ origin: PeerIndex, step: UInt64) -> Envelope {
        .make(kind: .update, runID: Self.run, origin: origin, incarnation: 0, step: step, sequence: step,
              body: [UInt8(origin), UInt8(truncatingIfNeeded: step)])
    }

    /// Publishes `steps` updates from every peer, advancing a few ticks after each step, and returns
    /// for each peer the (origin, step) pairs it received.
    func simulate(_ topology: Topology, seed: UInt64, drop: Double, steps: UInt64,
                  setup: (InMemoryNetwork) -> Void = { _ in }) throws -> [[String]] {
        let net = InMemoryNetwork(topology: topology, seed: seed)
        net.setDefaultConditions(LinkConditions(dropProbability: drop, delayTicks: 1))
        setup(net)
        let transports = topology.peers.map { net.transport(for: $0.index) }
        transports.forEach { $0.start() }
        var received = [[String]](repeating: [], count: transports.count)
        for step in 0..<steps {
            for t in transports { try t.publish(update(t.me, step: step)) }
            net.advance(ticks: 10)
            for (i, t) in transports.enumerated() {
                for case let .message(env, _) in t.events(timeout: .zero) {
                    received[i].append("\(env.header.origin)@\(env.header.step)")
                }
            }
        }
        transports.forEach { $0.stop() }
        return received
    }

    @Test func ringDeliversEveryMessageExactlyOnceThroughRelays() throws {
        let ring = try TopologyTests.shipped("ring8.yaml")
        let got = try simulate(ring, seed: 1, drop: 0, steps: 3)
        for (i, list) in got.enumerated() {
            #expect(list.count == 7 * 3, "peer \(i)")
            #expect(Set(list).count == list.count, "duplicates at peer \(i)")
        }
    }

    @Test func sameSeedSameOutcomeDifferentSeedDifferent() throws {
        let t = try TopologyTests.shipped("local4.yaml")
        let a = try simulate(t, seed: 7, drop: 0.3, steps: 20)
        let b = try simulate(t, seed: 7, drop: 0.3, steps: 20)
        let c = try simulate(t, seed: 8, drop: 0.3, steps: 20)
        #expect(a == b)
        #expect(a != c)
        let total = a.map(\.count).reduce(0, +)
        #expect(total > 100 && total < 220, "about 70% of 240 expected, got \(total)")
    }

    @Test func partitionCutsAndHealRestores() throws {
        let t = try TopologyTests.shipped("local4.yaml")
        let net = InMemoryNetwork(topology: t, seed: 3)
        let ts = t.peers.map { net.transport(for: $0.index) }
        ts.forEach { $0.start() }
        let connected = ts[0].events(timeout: .zero)
        #expect(connected == [.neighborConnected(1), .neighborConnected(2), .neighborConnected(3)])
        for t in ts.dropFirst() { #expect(t.events(timeout: .zero).count == 3) }
        net.partition([[0, 1], [2, 3]])
        #expect(ts[0].events(timeout: .zero) == [.neighborDisconnected(2), .neighborDisconnected(3)])
        try ts[0].publish(update(0, step: 1))
        net.advance(ticks: 5)
        #expect(ts[1].events(timeout: .zero).count == 3)  // two disconnects + the message
        #expect(ts[2].events(timeout: .zero) == [.neighborDisconnected(0), .neighborDisconnected(1)])
        net.heal()
        #expect(ts[3].events(timeout: .zero) == [.neighborDisconnected(0), .neighborDisconnected(1),
                                                  .neighborConnected(0), .neighborConnected(1)])
        try ts[0].publish(update(0, step: 2))
        net.advance(ticks: 1)
        #expect(ts[3].events(timeout: .zero).count == 1)
        ts[2].stop()
        #expect(throws: TransportStopped.self) { try ts[2].publish(update(2, step: 3)) }
        ts.forEach { $0.stop() }
    }

    @Test func delayAndPerLinkLoss() throws {
        let t = try TopologyTests.shipped("local2.yaml")
        let net = InMemoryNetwork(topology: t, seed: 11)
        net.setConditions(LinkConditions(dropProbability: 0, delayTicks: 5), from: 0, to: 1)
        net.setConditions(LinkConditions(dropProbability: 1, delayTicks: 1), from: 1, to: 0)
        let a = net.transport(for: 0), b = net.transport(for: 1)
        a.start(); b.start()
        _ = a.events(timeout: .zero); _ = b.events(timeout: .zero)
        try a.publish(update(0, step: 0))
        try b.publish(update(1, step: 0))
        net.advance(ticks: 4)
        #expect(b.events(timeout: .zero).isEmpty)
        net.advance(ticks: 1)
        #expect(b.events(timeout: .zero).count == 1)
        net.advance(ticks: 10)
        #expect(a.events(timeout: .zero).isEmpty)
        #expect(net.inFlightCount == 0)
        a.stop(); b.stop()
    }
}

@Suite struct InMemoryCatchUpTests {
    @Test func requestReplyReachesNonNeighboursAndStopsAtPartitions() throws {
        let ring = try TopologyTests.shipped("ring8.yaml")
        let net = InMemoryNetwork(topology: ring, seed: 5)
        net.setDefaultConditions(LinkConditions(dropProbability: 1, delayTicks: 2))  // pub/sub all lost…
        let asker = net.transport(for: 0), donor = net.transport(for: 4)
        asker.start(); donor.start()
        _ = asker.events(timeout: .zero); _ = donor.events(timeout: .zero)
        let request = Envelope.make(kind: .catchUpRequest, runID: 1, origin: 0, incarnation: 0, step: 3, sequence: 0, body: [])
        try asker.request(request, from: 4)  // …but catch-up is reliable
        net.advance(ticks: 2)
        guard case let .request(env, route)? = donor.events(timeout: .zero).first else {
            Issue.record("no request")
            return
        }
        #expect(env == request)
        try donor.reply(.make(kind: .catchUpEnd, runID: 1, origin: 4, incarnation: 0, step: 3, sequence: 0, body: [7]), to: route)
        net.advance(ticks: 2)
        #expect(asker.events(timeout: .zero).count == 1)
        net.partition([[0], [4]])
        try asker.request(request, from: 4)
        net.advance(ticks: 5)
        #expect(donor.events(timeout: .zero).allSatisfy { if case .request = $0 { false } else { true } })
    }
}
