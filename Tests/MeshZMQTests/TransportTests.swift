import CZMQ
import Foundation
import Mesh
import Testing
@testable import MeshZMQ

/// Real sockets on 127.0.0.1 with ephemeral ports. Every wait is bounded in rounds.
@Suite(.serialized) struct ZMQTransportTests {
    static func topology(_ count: Int, ring: Bool, curve: Bool = false) throws -> Topology {
        var yaml = """
        run: transport-test
        seed: 1
        model: { preset: tiny }
        data: { corpus: test, batch_size: 1 }
        optimizer: { kind: demo, lr: 0.001 }
        steps: 10
        security: { curve: \(curve) }
        peers:

        """
        for i in 0..<count {
            // Placeholder ports: the transports bind ephemeral ones (listenOverride).
            yaml += "  - { id: p\(i), pub: \"tcp://127.0.0.1:\(9000 + 2 * i)\", sync: \"tcp://127.0.0.1:\(9001 + 2 * i)\""
            if ring { yaml += ", neighbors: [p\((i + count - 1) % count), p\((i + 1) % count)]" }
            yaml += " }\n"
        }
        return try TopologyParser.parse(yaml: yaml, file: "test.yaml")
    }

    /// Starts one transport per peer on ephemeral ports, connects every SUB, and waits (bounded)
    /// until every peer has seen every expected neighbour connect.
    static func mesh(_ topology: Topology, curve: [CurveSetup]? = nil,
                     tweak: (PeerIndex, inout ZMQTransportOptions) -> Void = { _, _ in }) throws -> [ZMQTransport] {
        let transports = try topology.peers.map { peer throws -> ZMQTransport in
            var options = ZMQTransportOptions()
            options.listenOverride = .loopbackEphemeral
            options.connectOnStart = false
            options.pollInterval = .milliseconds(20)
            tweak(peer.index, &options)
            return try ZMQTransport(topology: topology, me: peer.index, curve: curve?[Int(peer.index)], options: options)
        }
        for t in transports { try t.start() }
        for t in transports {
            for n in topology.neighbors(of: t.me) {
                t.connect(neighbor: n, pub: try #require(transports[Int(n)].boundEndpoints).pub)
            }
        }
        var seen = [Set<PeerIndex>](repeating: [], count: transports.count)
        for _ in 0..<400 {  // ≤ 400 × (peers × 25 ms); usually a few rounds
            for (i, t) in transports.enumerated() {
                for case .neighborConnected(let p) in t.events(timeout: .milliseconds(25)) { seen[i].insert(p) }
            }
            let ready = transports.indices.allSatisfy { i in
                Set(topology.subscribers(of: PeerIndex(i))).isSubset(of: seen[i])
            }
            if ready { return transports }
        }
        Issue.record("mesh did not connect: \(seen)")
        return transports
    }

    /// Publishes one UPDATE per peer and collects "origin@step" per receiver until each has
    /// `expected` messages or the rounds run out.
    static func exchange(_ transports: [ZMQTransport], topology: Topology, expected: Int) throws -> [[String]] {
        for t in transports {
            var stamper = MessageStamper(runID: topology.runID, origin: t.me, incarnation: 1)
            try t.publish(stamper.stamp(.update, step: 3, body: Array("from \(t.me)".utf8)))
        }
        var got = [[String]](repeating: [], count: transports.count)
        for _ in 0..<400 {
            for (i, t) in transports.enumerated() {
                for case let .message(env, _) in t.events(timeout: .milliseconds(10)) {
                    #expect(env.body == Array("from \(env.header.origin)".utf8))
                    got[i].append("\(env.header.origin)@\(env.header.step)")
                }
            }
            if got.allSatisfy({ $0.count >= expected }) { break }
        }
        // A little longer, so that a late duplicate would show up.
        for (i, t) in transports.enumerated() {
            for case let .message(env, _) in t.events(timeout: .milliseconds(100)) { got[i].append("\(env.header.origin)@\(env.header.step)") }
        }
        return got
    }

    @Test func threePeersExchangeBothWays() throws {
        let topology = try Self.topology(3, ring: false)
        let transports = try Self.mesh(topology)
        defer { transports.forEach { $0.stop() } }
        let got = try Self.exchange(transports, topology: topology, expected: 2)
        for (i, list) in got.enumerated() {
            let others = (0..<3).filter { $0 != i }.map { "\($0)@3" }
            #expect(list.sorted() == others, "peer \(i)")
        }
        #expect(transports.allSatisfy { $0.stats.relayed == 0 })  // full mesh: nothing to relay
        #expect(transports.allSatisfy { $0.stats.invalidFrames == 0 })
    }

    @Test func ringOfFourRelaysEveryMessageExactlyOnce() throws {
        let topology = try Self.topology(4, ring: true)
        #expect(topology.neighbors(of: 0) == [1, 3])
        let transports = try Self.mesh(topology)
        defer { transports.forEach { $0.stop() } }
        let got = try Self.exchange(transports, topology: topology, expected: 3)
        for (i, list) in got.enumerated() {
            let others = (0..<4).filter { $0 != i }.map { "\($0)@3" }
            #expect(list.sorted() == others, "peer \(i) got \(list)")
        }
        // The opposite peer is reached only through relays.
        #expect(transports.map { $0.stats.relayed }.reduce(0, +) >= 4)
        #expect(transports.map { $0.stats.duplicates }.reduce(0, +) >= 4)
    }

    /// Eight peers, two neighbours each: the far side is four relays away. Three rounds of
    /// UPDATEs from everyone; each peer must get each (origin, step) exactly once.
    @Test func ringOfEightRelaysAcrossFourHops() throws {
        let topology = try Self.topology(8, ring: true)
        let transports = try Self.mesh(topology)
        defer { transports.forEach { $0.stop() } }
        var stampers = transports.map { MessageStamper(runID: topology.runID, origin: $0.me, incarnation: 1) }
        for step in 0..<3 as Range<UInt64> {
            for (i, t) in transports.enumerated() { try t.publish(stampers[i].stamp(.update, step: step, body: [UInt8(i)])) }
        }
        var got = [[String]](repeating: [], count: 8)
        for _ in 0..<300 where got.contains(where: { $0.count < 21 }) {
            for (i, t) in transports.enumerated() {
                for case let .message(env, _) in t.events(timeout: .milliseconds(5)) { got[i].append("\(env.header.origin)@\(env.header.step)") }
            }
        }
        for (i, t) in transports.enumerated() {
            for case let .message(env, _) in t.events(timeout: .milliseconds(50)) { got[i].append("\(env.header.origin)@\(env.header.step)") }
        }
        for (i, list) in got.enumerated() {
            #expect(list.count == 21 && Set(list).count == 21, "peer \(i): \(list.count) messages, \(Set(list).count) distinct")
        }
    }

    @Test func curveMeshDeliversBetweenListedPeers() throws {
        let topology = try Self.topology(2, ring: false, curve: true)
        let keys = try (0..<2).map { _ in try CurveKeyPair.generate() }
        let publicKeys = Dictionary(uniqueKeysWithValues: keys.enumerated().map { (PeerIndex($0.offset), $0.element.publicKey) })
        let setups = keys.map { CurveSetup(ownKeys: $0, publicKeys: publicKeys) }
        let transports = try Self.mesh(topology, curve: setups)
        defer { transports.forEach { $0.stop() } }
        let got = try Self.exchange(transports, topology: topology, expected: 1)
        #expect(got == [["1@3"], ["0@3"]])
    }

    @Test func invalidFramesAreCountedNotDelivered() throws {
        let topology = try Self.topology(2, ring: false)
        let transports = try Self.mesh(topology)
        defer { transports.forEach { $0.stop() } }
        // Another run's message: same shape, wrong run id.
        var foreign = MessageStamper(runID: topology.runID ^ 1, origin: 0, incarnation: 1)
        try transports[0].publish(foreign.stamp(.update, step: 1, body: [1, 2, 3]))
        var valid = MessageStamper(runID: topology.runID, origin: 0, incarnation: 1)
        try transports[0].publish(valid.stamp(.heartbeat, step: 1, body: []))
        var messages: [Envelope] = []
        for _ in 0..<300 where messages.isEmpty {
            for case let .message(env, _) in transports[1].events(timeout: .milliseconds(20)) { messages.append(env) }
        }
        #expect(messages.map(\.header.kind) == [.heartbeat])
        #expect(transports[1].stats.invalidFrames == 1)
        #expect(transports[1].stats.lastInvalid == .wrongRunID(expected: topology.runID, actual: topology.runID ^ 1))
    }

    @Test func portInUseIsAClearError() throws {
        let topology = try Self.topology(2, ring: false)
        var options = ZMQTransportOptions()
        options.listenOverride = .loopbackEphemeral
        options.connectOnStart = false
        let first = try ZMQTransport(topology: topology, me: 0, options: options)
        try first.start()
        defer { first.stop() }
        let taken = try #require(first.boundEndpoints)
        options.listenOverride = taken
        let second = try ZMQTransport(topology: topology, me: 1, options: options)
        defer { second.stop() }
        let error = #expect(throws: ZMQError.self) { try second.start() }
        #expect(error?.description.contains("another process") == true)
        #expect(throws: TransportStopped.self) {
            second.stop()
            try second.publish(.make(kind: .bye, runID: 0, origin: 1, incarnation: 0, step: 0, sequence: 0, body: []))
        }
    }
}
