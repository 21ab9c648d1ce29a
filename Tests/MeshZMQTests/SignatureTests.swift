import Crypto
import Foundation
import Mesh
import Testing
@testable import MeshZMQ

/// Issue 16 item 2: broadcasts carry their origin's Ed25519 signature; a key holder cannot speak for
/// another peer, not even by marking a forged copy `relayed`.
@Suite(.serialized) struct SignatureTests {
    static func authenticators(_ keys: [CurveKeyPair]) throws -> [Ed25519Authenticator] {
        let privates = try keys.map { try #require(SigningKeys.privateKey(forCurveSecret: $0.secretKey)) }
        let publics = Dictionary(uniqueKeysWithValues: privates.enumerated().map { (PeerIndex($0.offset), $0.element.publicKey) })
        return privates.map { Ed25519Authenticator(own: $0, publics: publics) }
    }

    func envelope(origin: PeerIndex, kind: MessageKind = .heartbeat, step: UInt64 = 7, body: [UInt8] = [1, 2, 3]) -> Envelope {
        Envelope.make(kind: kind, runID: 42, origin: origin, incarnation: 3, step: step, sequence: 9, body: body)
    }

    @Test func theSigningKeyDerivesFromTheCurveSecretAlone() throws {
        let pair = try CurveKeyPair.generate(), other = try CurveKeyPair.generate()
        let a = try #require(SigningKeys.privateKey(forCurveSecret: pair.secretKey))
        let b = try #require(SigningKeys.privateKey(forCurveSecret: pair.secretKey))
        let c = try #require(SigningKeys.privateKey(forCurveSecret: other.secretKey))
        #expect(a.publicKey.rawRepresentation == b.publicKey.rawRepresentation)
        #expect(a.publicKey.rawRepresentation != c.publicKey.rawRepresentation)
        #expect(SigningKeys.privateKey(forCurveSecret: "not a key") == nil)
        let hex = SigningKeys.hex(a.publicKey)
        #expect(hex.count == 64)
        #expect(SigningKeys.publicKey(hex: hex)?.rawRepresentation == a.publicKey.rawRepresentation)
        #expect(SigningKeys.publicKey(hex: String(hex.dropLast())) == nil)
        #expect(SigningKeys.publicKey(hex: String(repeating: "zz", count: 32)) == nil)
    }

    @Test func aSignatureCoversEveryFieldButTheRelayedFlag() throws {
        let auth = try Self.authenticators([try CurveKeyPair.generate(), try CurveKeyPair.generate()])
        var env = envelope(origin: 0)
        env.signature = auth[0].sign(env)
        #expect(env.signature?.count == Envelope.signatureSize)
        #expect(auth[1].verify(env))
        var relayed = env
        relayed.header.flags.insert(.relayed)
        #expect(auth[1].verify(relayed), "a relay's copy keeps its origin's signature valid")
        // Any other change breaks it.
        var tampered = [env, env, env, env, env]
        tampered[0].body[0] ^= 1
        tampered[1].header.step += 1
        tampered[2].header.incarnation = .max
        tampered[3].header.origin = 1
        tampered[4].signature![5] ^= 0x40
        for t in tampered { #expect(!auth[1].verify(t)) }
        var unsigned = env
        unsigned.signature = nil
        #expect(!auth[1].verify(unsigned))
        // p1 signing a message that claims p0: p1's key is not p0's.
        var forged = envelope(origin: 0, kind: .bye)
        forged.signature = auth[1].sign(forged)
        #expect(!auth[0].verify(forged))
        // An origin with no known key is refused.
        var stranger = envelope(origin: 5)
        stranger.signature = auth[0].sign(stranger)
        #expect(!auth[1].verify(stranger))
    }

    @Test func theSignatureTravelsAsAFourthFrame() throws {
        let auth = try Self.authenticators([try CurveKeyPair.generate()])
        var env = envelope(origin: 0)
        env.signature = auth[0].sign(env)
        #expect(env.frames.count == 4)
        let back = try Envelope(frames: env.frames, expectedRunID: 42, maxBody: 100, peerCount: 2)
        #expect(back == env)
        var frames = env.frames
        frames[3] = Array(frames[3].prefix(10))
        #expect(throws: WireError.badSignatureLength(10)) { try Envelope(frames: frames, expectedRunID: 42, maxBody: 100, peerCount: 2) }
        #expect(throws: WireError.badFrameCount(5)) { try Envelope(frames: env.frames + [[1]], expectedRunID: 42, maxBody: 100, peerCount: 2) }
    }

    @Test func theKeyStoreWritesChecksAndDemandsSigningKeys() throws {
        let dir = NSTemporaryDirectory() + "murmur-sign-\(UInt64.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let topology = try ZMQTransportTests.topology(3, ring: false, curve: true)
        let store = KeyStore(directory: dir)
        for p in topology.peers { try store.create(peer: p.id) }
        for p in topology.peers { #expect(FileManager.default.fileExists(atPath: store.signingPublicPath(p.id))) }
        var topo = topology
        topo.security.keys = dir
        let a0 = try store.authenticator(of: topo, me: 0), a1 = try store.authenticator(of: topo, me: 1)
        var env = envelope(origin: 0)
        env.signature = a0.sign(env)
        #expect(a1.verify(env))
        // A remote peer: only its .pub is here, and its .sign.pub is missing.
        try FileManager.default.removeItem(atPath: store.secretPath("p2"))
        try FileManager.default.removeItem(atPath: store.signingPublicPath("p2"))
        #expect(throws: KeyStoreError.missingSigningKey(path: store.signingPublicPath("p2"), peer: "p2")) {
            try store.authenticator(of: topo, me: 0)
        }
        // Garbage where a remote peer's key should be.
        try "garbage\n".write(toFile: store.signingPublicPath("p2"), atomically: true, encoding: .utf8)
        #expect(throws: KeyStoreError.badSigningKey(path: store.signingPublicPath("p2"))) {
            try store.authenticator(of: topo, me: 0)
        }
        // A remote peer's key cannot be checked here; one whose secret is here must match it.
        try (SigningKeys.hex(Curve25519.Signing.PrivateKey().publicKey) + "\n")
            .write(toFile: store.signingPublicPath("p2"), atomically: true, encoding: .utf8)
        _ = try store.authenticator(of: topo, me: 0)
        try (SigningKeys.hex(Curve25519.Signing.PrivateKey().publicKey) + "\n")
            .write(toFile: store.signingPublicPath("p1"), atomically: true, encoding: .utf8)
        #expect(throws: KeyStoreError.mismatchedSigningKey(peer: "p1", path: store.signingPublicPath("p1"))) {
            try store.authenticator(of: topo, me: 0)
        }
    }

    /// Real sockets: p1 holds a valid key and publishes, as if relaying, messages that claim p0 —
    /// unsigned, signed with its own key, and p0's real signature on an altered copy. p2 refuses
    /// all of them and still takes p1's own and p0's genuine messages.
    @Test func aKeyHolderCannotSpeakForAnotherPeerOnTheRealMesh() throws {
        let topology = try ZMQTransportTests.topology(3, ring: false, curve: true)
        let keys = try (0..<3).map { _ in try CurveKeyPair.generate() }
        let publicKeys = Dictionary(uniqueKeysWithValues: keys.enumerated().map { (PeerIndex($0.offset), $0.element.publicKey) })
        let auth = try Self.authenticators(keys)
        let setups = keys.indices.map { CurveSetup(ownKeys: keys[$0], publicKeys: publicKeys, signing: auth[$0]) }
        let transports = try ZMQTransportTests.mesh(topology, curve: setups)
        defer { transports.forEach { $0.stop() } }
        let runID = topology.runID
        func make(_ kind: MessageKind, origin: PeerIndex, sequence: UInt64, incarnation: UInt32 = 1, relayed: Bool = true,
                  body: [UInt8] = [UInt8](repeating: 7, count: 16)) -> Envelope {
            Envelope.make(kind: kind, flags: relayed ? [.relayed] : [], runID: runID, origin: origin,
                          incarnation: incarnation, step: 1, sequence: sequence, body: body)
        }
        // Forged by p1 (it publishes them itself; its mesh signs only what has its own origin).
        try transports[1].publish(make(.heartbeat, origin: 0, sequence: 100, incarnation: .max))
        var selfSigned = make(.bye, origin: 0, sequence: 101)
        selfSigned.signature = auth[1].sign(selfSigned)
        try transports[1].publish(selfSigned)
        var genuine = make(.update, origin: 0, sequence: 102)
        genuine.signature = auth[0].sign(genuine)
        // Another body under p0's real signature (a consistent header: only the signature is wrong).
        var altered = make(.update, origin: 0, sequence: 102, body: [UInt8](repeating: 8, count: 16))
        altered.signature = genuine.signature
        try transports[1].publish(altered)
        // Honest traffic: p1 as itself, p0 as itself.
        try transports[1].publish(make(.heartbeat, origin: 1, sequence: 1, relayed: false))
        try transports[0].publish(make(.heartbeat, origin: 0, sequence: 1, relayed: false))
        var got: [String] = []
        for _ in 0..<200 where got.count < 2 || transports[2].stats.unauthenticated < 3 {  // ≤ 200 × 25 ms
            for case .message(let env, let from) in transports[2].events(timeout: .milliseconds(25)) {
                got.append("\(env.header.kind)@\(env.header.origin) via \(from)")
            }
        }
        #expect(got.sorted() == ["heartbeat@0 via 0", "heartbeat@1 via 1"], "\(got)")
        #expect(transports[2].stats.unauthenticated == 3, "\(transports[2].stats)")
        #expect(transports[2].stats.lastUnauthenticated?.contains("claiming origin p0 via p1") == true)
        #expect(transports[2].stats.invalidFrames == 0)
    }
}

/// Issue 16 item 4: the queue from the mesh thread to the trainer is bounded.
@Suite struct MeshQueueBoundTests {
    @Test func messagesBeyondTheBoundAreDroppedAndCountedLinkEventsKept() throws {
        let shared = try MeshShared(maxQueuedBytes: 10 * (MessageHeader.size + 100), maxQueuedEvents: 1000)
        let env = Envelope.make(kind: .update, runID: 1, origin: 1, incarnation: 1, step: 0, sequence: 1,
                                body: [UInt8](repeating: 0, count: 100))
        shared.deliver((0..<25).map { _ in .message(env, from: 1) } + [.neighborConnected(1)], stats: TransportStats())
        let first = shared.drain(timeout: .zero)
        #expect(first.count == 11, "10 messages fit, and the link event")
        #expect(first.last == .neighborConnected(1))
        #expect(shared.stats.queueDropped == 15)
        // Drained: room again.
        shared.deliver((0..<3).map { _ in .message(env, from: 1) }, stats: TransportStats())
        #expect(shared.drain(timeout: .zero).count == 3)
        #expect(shared.stats.queueDropped == 15)
    }
}
