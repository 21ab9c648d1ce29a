import CZMQ
import Foundation
import Mesh
import Testing
@testable import MeshZMQ

@Suite struct KeyStoreTests {
    func tempDir() -> String {
        let dir = NSTemporaryDirectory() + "murmur-keys-\(UInt64.random(in: 0...UInt64.max))"
        return dir
    }

    @Test func writesReadsAndChecks() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = KeyStore(directory: dir)
        let pair = try store.create(peer: "p0")
        #expect(Z85.isKey(pair.publicKey) && Z85.isKey(pair.secretKey))
        #expect(CurveKeyPair.publicKey(forSecret: pair.secretKey) == pair.publicKey)
        let mode = try FileManager.default.attributesOfItem(atPath: store.secretPath("p0"))[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        #expect(try store.keyPair(peer: "p0") == pair)
        #expect(throws: KeyStoreError.self) { try store.create(peer: "p0") }

        #expect(throws: KeyStoreError.missingFile(path: store.secretPath("p1"), peer: "p1")) { try store.keyPair(peer: "p1") }

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: store.secretPath("p0"))
        let permission = #expect(throws: KeyStoreError.badPermissions(path: store.secretPath("p0"), mode: 0o644)) {
            try store.keyPair(peer: "p0")
        }
        #expect(permission?.description.contains("chmod 600") == true)

        try "short\n".write(toFile: store.publicPath("p2"), atomically: true, encoding: .utf8)
        #expect(throws: KeyStoreError.wrongLength(path: store.publicPath("p2"), found: 5)) { try store.publicKey(peer: "p2") }

        let other = try CurveKeyPair.generate()
        try store.write(CurveKeyPair(publicKey: other.publicKey, secretKey: pair.secretKey), peer: "p3")
        #expect(throws: KeyStoreError.mismatchedPair(peer: "p3")) { try store.keyPair(peer: "p3") }
    }

    @Test func z85RoundTrip() throws {
        let pair = try CurveKeyPair.generate()
        let raw = try #require(Z85.decode(pair.publicKey))
        #expect(raw.count == 32)
        #expect(Z85.encode(raw) == pair.publicKey)
        #expect(Z85.decode("too short") == nil)
    }
}

/// CURVE + ZAP on loopback: only the listed client gets anything.
@Suite struct CurveAccessTests {
    @Test func onlyTheAuthorisedClientReceives() throws {
        let ctx = try ZMQContext()
        let server = try CurveKeyPair.generate()
        let good = try CurveKeyPair.generate()
        let stranger = try CurveKeyPair.generate()
        let wrongServer = try CurveKeyPair.generate()

        // ZAP first, then the server socket.
        let zap = try ZAPHandler(context: ctx, allowed: [good.publicKey: "good", server.publicKey: "self"])
        let pub = try ZMQSocket(ctx, type: ZMQ_XPUB)
        try pub.set(ZMQ_XPUB_VERBOSE, 1)
        try pub.makeCurveServer(secretKey: server.secretKey)
        let endpoint = try pub.bind("tcp://127.0.0.1:*")

        func client(_ keys: CurveKeyPair?, serverKey: String?, tag: UInt8) throws -> ZMQSocket {
            let s = try ZMQSocket(ctx, type: ZMQ_SUB)
            try s.set(ZMQ_HANDSHAKE_IVL, 1000)
            if let keys { try s.setCurveClientKeys(keys) }
            if let serverKey { try s.setCurveServerKey(serverKey) }
            try s.set(ZMQ_SUBSCRIBE, bytes: [])
            try s.set(ZMQ_SUBSCRIBE, bytes: Topic.presence(of: PeerIndex(tag)))  // presence: tells the XPUB who joined
            try s.connect(endpoint)
            return s
        }
        let authorised = try client(good, serverKey: server.publicKey, tag: 1)
        let unknownKey = try client(stranger, serverKey: server.publicKey, tag: 2)
        let wrongKey = try client(good, serverKey: wrongServer.publicKey, tag: 3)
        let plaintext = try client(nil, serverKey: nil, tag: 4)
        let clients = [authorised, unknownKey, wrongKey, plaintext]
        defer {
            clients.forEach { $0.close() }
            pub.close()
            zap.socket.close()
        }

        var received = [Int](repeating: 0, count: clients.count)
        var presence: Set<UInt8> = []
        var afterFirst = 0
        // Bounded: at most 1000 × 10 ms; after the authorised client's first message, 40 more rounds
        // give the others every chance to (wrongly) receive something.
        for _ in 0..<1000 {
            var poller = ZMQPoller()
            poller.add(zap.socket)
            poller.add(pub)
            clients.forEach { poller.add($0) }
            try poller.poll(timeoutMilliseconds: 10)
            try zap.serve()
            while let frame = try pub.receive() {
                if case .presence(let who, true) = Topic.parseSubscription(frame.first ?? []) { presence.insert(UInt8(who & 0xFF)) }
            }
            if presence.contains(1) { try pub.send([[9], Array("secret".utf8)]) }
            for (i, c) in clients.enumerated() {
                while let frames = try c.receive() {
                    if frames == [[9], Array("secret".utf8)] { received[i] += 1 }
                }
            }
            if received[0] > 0 { afterFirst += 1 }
            if afterFirst > 40 { break }
        }
        #expect(received[0] > 0, "authorised client got nothing")
        #expect(received[1] == 0 && received[2] == 0 && received[3] == 0, "\(received)")
        #expect(presence == [1])
        #expect(zap.accepted >= 1)
        #expect(zap.refused >= 1)  // the unknown key reached ZAP and was refused
    }

    @Test func zapReplyShape() throws {
        let ctx = try ZMQContext()
        let key = try CurveKeyPair.generate()
        let zap = try ZAPHandler(context: ctx, allowed: [key.publicKey: "p0"])
        defer { zap.socket.close() }
        let raw = try #require(Z85.decode(key.publicKey))
        let base: [[UInt8]] = [Array("1.0".utf8), [42], Array("murmur".utf8), Array("127.0.0.1".utf8), [], Array("CURVE".utf8)]
        #expect(zap.reply(to: base + [raw]) == [Array("1.0".utf8), [42], Array("200".utf8), Array("OK".utf8), Array("p0".utf8), []])
        #expect(zap.reply(to: base + [[UInt8](repeating: 1, count: 32)])[2] == Array("400".utf8))
        var otherDomain = base + [raw]
        otherDomain[2] = Array("x".utf8)
        #expect(zap.reply(to: otherDomain)[2] == Array("400".utf8))
        #expect(zap.reply(to: [[1]])[2] == Array("400".utf8))
    }
}

@Suite struct KeysForTopologyTests {
    @Test func createMissingThenLoadForEveryPeer() throws {
        let dir = NSTemporaryDirectory() + "murmur-topokeys-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var topology = try ZMQTransportTests.topology(3, ring: false, curve: true)
        topology.security.keys = dir
        let store = KeyStore(directory: dir)
        #expect(try store.createMissing(for: topology) == ["p0", "p1", "p2"])
        #expect(try store.createMissing(for: topology).isEmpty)  // idempotent: keys kept
        let setup = try CurveSetup.load(topology: topology, me: 1)
        #expect(setup.publicKeys.count == 3)
        #expect(setup.publicKeys[1] == setup.ownKeys.publicKey)
        let transport = try ZMQTransport.forPeer(id: "p2", of: topology)
        #expect(transport.me == 2)
        transport.stop()
        #expect(throws: TopologyError.self) { try ZMQTransport.forPeer(id: "p9", of: topology) }
    }
}
