import Testing
@testable import Mesh

/// HELLO is the one message another run may send: accepted whatever its run id, never relayed.
@Suite struct HelloWireTests {
    func frames(_ kind: MessageKind, runID: UInt64, origin: PeerIndex) -> [[UInt8]] {
        Envelope.make(kind: kind, runID: runID, origin: origin, incarnation: 1, step: 0, sequence: 1, body: [1, 2, 3]).frames
    }

    @Test func aForeignHelloPassesTheHeaderCheckAndNothingElseDoes() throws {
        let e = try Envelope(frames: frames(.hello, runID: 99, origin: 7), expectedRunID: 5, maxBody: 1024, peerCount: 3)
        #expect(e.header.runID == 99 && e.header.origin == 7)
        for kind in MessageKind.allCases where kind != .hello {
            #expect(throws: WireError.self) { try Envelope(frames: frames(kind, runID: 99, origin: 1), expectedRunID: 5, maxBody: 1024, peerCount: 3) }
        }
        // Our own run's HELLO still has to name one of our peers.
        #expect(throws: WireError.self) { try Envelope(frames: frames(.hello, runID: 5, origin: 7), expectedRunID: 5, maxBody: 1024, peerCount: 3) }
    }

    @Test func helloIsNeverRelayed() throws {
        let ring = try TopologyTests.shipped("ring8.yaml")
        var relay = Relay(topology: ring, me: 1)
        let h = MessageHeader(kind: .hello, runID: 1, origin: 0, incarnation: 0, step: 0, sequence: 1, body: [])
        #expect(relay.decide(h) == .deliver(forward: false))
        #expect(relay.decide(h) == .deliver(forward: false), "no duplicate filter state either")
        let mine = MessageHeader(kind: .hello, runID: 1, origin: 1, incarnation: 0, step: 0, sequence: 1, body: [])
        #expect(relay.decide(mine) == .deliver(forward: false), "a foreign peer may have our index")
    }
}

/// Plaintext only where nobody else can reach the ports (issue 12's "protected mode").
@Suite struct PlaintextGuardTests {
    func yaml(host: String, security: String, netns: Bool = false) -> String {
        let ns = netns ? ", netns: lab-p0" : ""
        return """
        run: guard
        seed: 1
        model: { preset: nano }
        data: { corpus: shakespeare, batch_size: 2 }
        optimizer: { kind: demo, lr: 3.0e-3, topk: 8, chunk: 16, decay: 0.999, values: bf16, weight_decay: 0.0 }
        steps: 10
        heartbeat: { interval: 100ms, suspect_after: 500ms, dead_after: 1500ms }
        checkpoint: { every: 50, keep: 3, dir: runs/guard }
        security: \(security)
        peers:
          - { id: p0, pub: "tcp://\(host):7100", sync: "tcp://\(host):7101"\(ns) }
          - { id: p1, pub: "tcp://127.0.0.1:7110", sync: "tcp://127.0.0.1:7111" }
        """
    }

    @Test func anOpenAddressWithoutCurveIsRefusedWithTheWayOut() throws {
        do {
            _ = try TopologyParser.parse(yaml: yaml(host: "0.0.0.0", security: "{ curve: false, keys: keys/ }"), file: "t.yaml")
            Issue.record("a plaintext mesh on 0.0.0.0 was accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("p0 listens on tcp://0.0.0.0:7100"), "\(text)")
            #expect(text.contains("murmur keys") && text.contains("plaintext: allow"), "\(text)")
        }
        #expect(throws: TopologyError.self) {
            try TopologyParser.parse(yaml: yaml(host: "192.168.1.5", security: "{ curve: false }"), file: "t.yaml")
        }
    }

    @Test func loopbackNamespacesCurveOrAnExplicitOptInAreAccepted() throws {
        _ = try TopologyParser.parse(yaml: yaml(host: "127.0.0.1", security: "{ curve: false }"), file: "t.yaml")
        _ = try TopologyParser.parse(yaml: yaml(host: "10.77.0.10", security: "{ curve: false }", netns: true), file: "t.yaml")
        _ = try TopologyParser.parse(yaml: yaml(host: "0.0.0.0", security: "{ curve: true, keys: keys/ }"), file: "t.yaml")
        let t = try TopologyParser.parse(yaml: yaml(host: "0.0.0.0", security: "{ curve: false, plaintext: allow }"), file: "t.yaml")
        #expect(t.security.plaintextAllowed)
        #expect(throws: TopologyError.self) {
            try TopologyParser.parse(yaml: yaml(host: "0.0.0.0", security: "{ curve: false, plaintext: maybe }"), file: "t.yaml")
        }
    }
}

/// A peer may speak only for itself on its own link (issue 16).
@Suite struct OriginBindingTests {
    func header(origin: PeerIndex, relayed: Bool, kind: MessageKind = .update) -> MessageHeader {
        MessageHeader(kind: kind, flags: relayed ? [.relayed] : [], runID: 1, origin: origin, incarnation: 1, step: 0, sequence: 1, body: [])
    }

    @Test func originFitsTable() {
        #expect(Relay.originFits(header(origin: 2, relayed: false), neighbor: 2))
        #expect(!Relay.originFits(header(origin: 3, relayed: false), neighbor: 2), "speaking for p3 on p2's link")
        #expect(Relay.originFits(header(origin: 3, relayed: true), neighbor: 2))
        #expect(!Relay.originFits(header(origin: 2, relayed: true), neighbor: 2), "nobody relays its own")
        #expect(Relay.originFits(header(origin: 9, relayed: false, kind: .hello), neighbor: 2))
        #expect(Relay.originFits(header(origin: 3, relayed: false, kind: .catchUpReplay), neighbor: 2))
    }

    @Test func theSimulatedNetworkDropsAMessageForAnotherOrigin() throws {
        let topo = try TopologyTests.shipped("local4.yaml")
        let net = InMemoryNetwork(topology: topo, seed: 1)
        let a = net.transport(for: 0), b = net.transport(for: 1)
        try a.start(); try b.start()
        for _ in 0..<5 { net.advance() }
        _ = try b.events(timeout: .zero)
        try a.publish(Envelope.make(kind: .bye, runID: topo.runID, origin: 3, incarnation: 1, step: 0, sequence: 1, body: []))
        try a.publish(Envelope.make(kind: .bye, runID: topo.runID, origin: 0, incarnation: 1, step: 0, sequence: 2, body: []))
        for _ in 0..<5 { net.advance() }
        let got = try b.events(timeout: .zero).compactMap { e -> PeerIndex? in if case .message(let env, _) = e { env.header.origin } else { nil } }
        #expect(got == [0], "\(got)")
        #expect(b.stats.invalidFrames == 1)
    }
}
