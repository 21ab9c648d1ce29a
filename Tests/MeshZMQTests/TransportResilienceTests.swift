import CZMQ
import Foundation
import Mesh
import Testing
@testable import MeshZMQ

// Catch-up, presence, security and link revival on real loopback sockets (helpers in TransportTests).

@Suite(.serialized) struct ZMQCatchUpAndPresenceTests {
    @Test(arguments: [false, true])
    func catchUpRequestAndReplyOverRouterDealer(curve: Bool) throws {
        let topology = try ZMQTransportTests.topology(2, ring: false, curve: curve)
        var setups: [CurveSetup]?
        if curve {
            let keys = try (0..<2).map { _ in try CurveKeyPair.generate() }
            let publicKeys: [PeerIndex: String] = [0: keys[0].publicKey, 1: keys[1].publicKey]
            setups = keys.map { CurveSetup(ownKeys: $0, publicKeys: publicKeys) }
        }
        let transports = try ZMQTransportTests.mesh(topology, curve: setups)
        defer { transports.forEach { $0.stop() } }
        let (asker, donor) = (transports[0], transports[1])
        asker.setSyncEndpoint(of: 1, try #require(donor.boundEndpoints).sync)
        var askerStamp = MessageStamper(runID: topology.runID, origin: 0, incarnation: 2)
        try asker.request(askerStamp.stamp(.catchUpRequest, step: 7, body: [1]), from: 1)

        var route: ReplyRoute?
        for _ in 0..<300 where route == nil {
            for case let .request(env, r) in donor.events(timeout: .milliseconds(20)) {
                #expect(env.header.origin == 0 && env.header.step == 7)
                route = r
            }
        }
        let to = try #require(route)
        var donorStamp = MessageStamper(runID: topology.runID, origin: 1, incarnation: 1)
        for chunk in 0..<3 as Range<UInt8> {
            try donor.reply(donorStamp.stamp(chunk == 2 ? .catchUpEnd : .catchUpSnapshot, step: 7, body: [chunk]), to: to)
        }
        var replies: [Envelope] = []
        for _ in 0..<300 where replies.count < 3 {
            for case let .message(env, from) in asker.events(timeout: .milliseconds(20)) where from == 1 { replies.append(env) }
        }
        #expect(replies.map(\.body) == [[0], [1], [2]])
        #expect(replies.last?.header.kind == .catchUpEnd)

        // A reply to a route that does not exist is counted, and the mesh keeps working.
        try donor.reply(donorStamp.stamp(.catchUpEnd, step: 7, body: []), to: ReplyRoute(identity: [9, 9, 9]))
        try donor.publish(donorStamp.stamp(.heartbeat, step: 7, body: []))
        var heartbeat = false
        for _ in 0..<300 where !heartbeat {
            for case let .message(env, _) in asker.events(timeout: .milliseconds(20)) where env.header.kind == .heartbeat { heartbeat = true }
        }
        #expect(heartbeat)
        // The counter is updated on the mesh thread; give its snapshot a bounded moment to land.
        var failed = donor.stats.failedOperations
        for _ in 0..<200 where failed != 1 {
            Thread.sleep(forTimeInterval: 0.01)
            failed = donor.stats.failedOperations
        }
        #expect(failed == 1)
    }

    @Test func stoppedPeerIsSeenDisconnected() throws {
        let topology = try ZMQTransportTests.topology(2, ring: false)
        let transports = try ZMQTransportTests.mesh(topology)
        defer { transports[0].stop() }
        transports[1].stop()
        var gone = false
        for _ in 0..<500 where !gone {  // presence UNSUBSCRIBE arrives when the TCP connection closes
            for case .neighborDisconnected(1) in transports[0].events(timeout: .milliseconds(20)) { gone = true }
        }
        #expect(gone)
    }
}

@Suite(.serialized) struct ZMQTransportSecurityTests {
    /// Peer 1 runs with a key the others do not list: ZAP refuses it, so it hears nothing and
    /// peer 0 never counts it as connected; peer 0's own traffic to listed peers is unaffected.
    @Test func peerWithUnlistedKeyIsShutOut() throws {
        let topology = try ZMQTransportTests.topology(2, ring: false, curve: true)
        let listed = try (0..<2).map { _ in try CurveKeyPair.generate() }
        let impostor = try CurveKeyPair.generate()
        let publicKeys: [PeerIndex: String] = [0: listed[0].publicKey, 1: listed[1].publicKey]
        var options = ZMQTransportOptions()
        options.listenOverride = .loopbackEphemeral
        options.connectOnStart = false
        options.pollInterval = .milliseconds(20)
        let honest = try ZMQTransport(topology: topology, me: 0, curve: CurveSetup(ownKeys: listed[0], publicKeys: publicKeys), options: options)
        let intruder = try ZMQTransport(topology: topology, me: 1, curve: CurveSetup(ownKeys: impostor, publicKeys: publicKeys), options: options)
        defer { intruder.stop(); honest.stop() }
        try honest.start()
        try intruder.start()
        intruder.connect(neighbor: 0, pub: try #require(honest.boundEndpoints).pub)
        var stamper = MessageStamper(runID: topology.runID, origin: 0, incarnation: 1)
        var honestEvents: [TransportEvent] = [], intruderEvents: [TransportEvent] = []
        for round in 0..<40 {  // ≈ 40 × 2 × 20 ms
            try honest.publish(stamper.stamp(.heartbeat, step: UInt64(round), body: []))
            honestEvents += honest.events(timeout: .milliseconds(20))
            intruderEvents += intruder.events(timeout: .milliseconds(20))
        }
        #expect(honestEvents.isEmpty, "\(honestEvents)")
        #expect(intruderEvents.isEmpty, "\(intruderEvents)")
    }
}

@Suite(.serialized) struct ZMQLinkRevivalTests {
    /// An oversized frame makes the receiving SUB drop the link, and libzmq never reconnects it by
    /// itself; the transport's link watch revives it, so later messages get through again.
    @Test func linkCutByAnOversizedFrameIsRevived() throws {
        let topology = try ZMQTransportTests.topology(2, ring: false)
        let transports = try ZMQTransportTests.mesh(topology) { peer, options in
            options.maxFrameBytes = peer == 1 ? 64 << 10 : 8 << 20
        }
        defer { transports.forEach { $0.stop() } }
        var stamper = MessageStamper(runID: topology.runID, origin: 0, incarnation: 1)
        try transports[0].publish(stamper.stamp(.update, step: 1, body: [UInt8](repeating: 7, count: 1 << 20)))
        var heard: [MessageKind] = []
        for round in 0..<400 where !heard.contains(.heartbeat) {  // ≤ 400 × 20 ms
            if round >= 10 { try transports[0].publish(stamper.stamp(.heartbeat, step: 1, body: [])) }
            for case let .message(env, _) in transports[1].events(timeout: .milliseconds(20)) { heard.append(env.header.kind) }
        }
        #expect(!heard.contains(.update))  // the oversized one never arrives
        #expect(heard.contains(.heartbeat))
        #expect(transports[1].stats.linkRevivals >= 1)
    }

    /// The ROUTER only ever receives catch-up requests and credits: a frame above
    /// `maxRequestFrameBytes` is refused by libzmq (it drops that connection) and never
    /// delivered, while other requesters' small requests still are.
    @Test func routerRefusesFramesAboveTheRequestLimit() throws {
        let topology = try ZMQTransportTests.topology(3, ring: false)
        let transports = try ZMQTransportTests.mesh(topology) { _, options in
            options.maxRequestFrameBytes = 4 << 10
        }
        defer { transports.forEach { $0.stop() } }
        let sync = try #require(transports[0].boundEndpoints).sync
        transports[1].setSyncEndpoint(of: 0, sync)
        transports[2].setSyncEndpoint(of: 0, sync)
        var big = MessageStamper(runID: topology.runID, origin: 1, incarnation: 1)
        var small = MessageStamper(runID: topology.runID, origin: 2, incarnation: 1)
        try transports[1].request(big.stamp(.catchUpRequest, step: 1, body: [UInt8](repeating: 1, count: 64 << 10)), from: 0)
        var bodies: [Int] = []
        for round in 0..<400 where !bodies.contains(1) {  // ≤ 400 × 20 ms
            if round >= 10 && round % 10 == 0 { try transports[2].request(small.stamp(.catchUpRequest, step: 1, body: [1]), from: 0) }
            for case let .request(env, _) in transports[0].events(timeout: .milliseconds(20)) { bodies.append(env.body.count) }
        }
        #expect(!bodies.contains(64 << 10))  // the oversized request never arrives
        #expect(bodies.contains(1))
    }

    @Test func publishingAboveOwnLimitIsRefused() throws {
        let topology = try ZMQTransportTests.topology(2, ring: false)
        var options = ZMQTransportOptions()
        options.listenOverride = .loopbackEphemeral
        options.connectOnStart = false
        options.maxFrameBytes = 1024
        let t = try ZMQTransport(topology: topology, me: 0, options: options)
        try t.start()
        defer { t.stop() }
        #expect(throws: MessageTooLarge.self) {
            try t.publish(.make(kind: .update, runID: topology.runID, origin: 0, incarnation: 0, step: 0, sequence: 0,
                                body: [UInt8](repeating: 0, count: 2000)))
        }
    }
}

@Suite struct LinkWatchTests {
    @Test func revivesOnlyWhenLibzmqGaveUp() {
        var w = LinkWatch(minBackoff: .seconds(1), maxBackoff: .seconds(4))
        var due = false
        w.observe(ZMQ_EVENT_DISCONNECTED, now: .zero)
        w.observe(ZMQ_EVENT_CONNECT_RETRIED, now: .milliseconds(100))  // libzmq retries: leave it
        due = w.takeRevival(now: .seconds(5))
        #expect(!due)
        w.observe(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, now: .seconds(5))    // refused: nobody retries
        due = w.takeRevival(now: .milliseconds(5500))
        #expect(!due)
        due = w.takeRevival(now: .seconds(6))
        #expect(due)
        due = w.takeRevival(now: .seconds(7))  // once
        #expect(!due)
        w.observe(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, now: .seconds(7))
        due = w.takeRevival(now: .milliseconds(8500))  // backoff doubled to 2 s
        #expect(!due)
        due = w.takeRevival(now: .seconds(9))
        #expect(due)
        w.observe(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, now: .seconds(10))
        #expect(w.backoff == .seconds(1))
        #expect(w.reviveAt == nil)
    }

    @Test func parsesMonitorFrames() {
        let e = MonitorEvent(frames: [[0x00, 0x02, 7, 0, 0, 0], Array("tcp://127.0.0.1:1".utf8)])
        #expect(e?.event == ZMQ_EVENT_DISCONNECTED)
        #expect(e?.value == 7)
        #expect(MonitorEvent(frames: [[1, 2]]) == nil)
    }
}
