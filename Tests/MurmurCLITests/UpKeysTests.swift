import Foundation
import Mesh
import MeshZMQ
import Testing
@testable import MurmurCLI

/// Issue 16, item 5: `murmur up` with CURVE makes keys only for the peers of this host, never
/// replaces a key file, and names the file and the host of every missing remote public key.
@Suite struct UpKeysTests {
    /// p0 and p1 on loopback (this host), p2 and p3 on addresses that are not this machine's.
    static func topology(keys: String, inlineP3: String? = nil, inlineSignP3: String? = nil) throws -> Topology {
        var yaml = """
        run: keytest
        seed: 3
        model: { preset: nano }
        data: { corpus: shakespeare, batch_size: 4 }
        optimizer: { kind: demo, lr: 3.0e-3, topk: 8, chunk: 16, decay: 0.999, values: bf16, weight_decay: 0.0 }
        steps: 10
        round: { deadline: adaptive, max_deadline: 5s }
        heartbeat: { interval: 100ms, suspect_after: 500ms, dead_after: 1500ms }
        checkpoint: { every: 5, keep: 1, dir: /tmp/murmur-keytest-unused }
        security: { curve: true, keys: \(keys) }
        peers:
          - { id: p0, pub: "tcp://127.0.0.1:7800", sync: "tcp://127.0.0.1:7801" }
          - { id: p1, pub: "tcp://127.0.0.1:7810", sync: "tcp://127.0.0.1:7811" }
          - { id: p2, pub: "tcp://192.0.2.12:7820", sync: "tcp://192.0.2.12:7821" }

        """
        if let inlineP3 {
            yaml += "  - { id: p3, pub: \"tcp://192.0.2.13:7830\", sync: \"tcp://192.0.2.13:7831\", public_key: \"\(inlineP3)\"\(inlineSignP3.map { ", sign_key: \"\($0)\"" } ?? "") }\n"
        } else {
            yaml += "  - { id: p3, pub: \"tcp://192.0.2.13:7830\", sync: \"tcp://192.0.2.13:7831\" }\n"
        }
        return try TopologyParser.parse(yaml: yaml, file: "keytest.yaml")
    }

    /// Makes p2's and p3's keys in `<store>-other-host` (standing for their own machines) and copies
    /// their `.pub` files — and `.sign.pub` when `signing` — into `store`, as a user would.
    static func copyRemotePublicKeys(to store: KeyStore, signing: Bool) throws {
        let elsewhere = KeyStore(directory: store.directory + "-other-host")
        try elsewhere.create(peer: "p2")
        try elsewhere.create(peer: "p3")
        try FileManager.default.createDirectory(atPath: store.directory, withIntermediateDirectories: true)
        for id in ["p2", "p3"] {
            try FileManager.default.copyItem(atPath: elsewhere.publicPath(id), toPath: store.publicPath(id))
            if signing { try FileManager.default.copyItem(atPath: elsewhere.signingPublicPath(id), toPath: store.signingPublicPath(id)) }
        }
    }

    static func keysDir() -> String {
        NSTemporaryDirectory() + "murmur-upkeys-\(UInt64.random(in: 0...UInt64.max))/keys"
    }

    static func mode(_ path: String) -> mode_t {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_mode & 0o777 : 0xFFFF
    }

    @Test func onlyLocalPeersGetKeysAndMissingRemotePubsNameFileAndHost() throws {
        let dir = Self.keysDir()
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let topo = try Self.topology(keys: dir)
        let local = topo.localPeers(localAddresses: [])
        #expect(local.map(\.id) == ["p0", "p1"])
        let store = KeyStore(directory: dir)
        let problems = #expect(throws: UpKeys.Problems.self) { try UpKeys.prepare(topology: topo, local: local, store: store) }
        let text = problems?.description ?? ""
        #expect(text.contains("\(dir)/p2.pub is missing"), "\(text)")
        #expect(text.contains("runs on 192.0.2.12"), "\(text)")
        #expect(text.contains("Copy \(dir)/p3.pub from 192.0.2.13"), "\(text)")
        #expect(text.contains("\(dir)/p0.pub"))  // the local .pub files to hand to the other machines
        // The local peers got keys (before the error, so they can be copied), the remote ones none.
        #expect(store.hasSecret("p0") && store.hasPublic("p0") && store.hasSecret("p1"))
        #expect(!store.hasSecret("p2") && !store.hasPublic("p2") && !store.hasSecret("p3") && !store.hasPublic("p3"))
        #expect(Self.mode(store.secretPath("p0")) == 0o600)
        #expect(Self.mode(dir) == 0o700)
    }

    @Test func copiedPublicKeysAreByteIdenticalAfterTheKeyStep() throws {
        let dir = Self.keysDir()
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let topo = try Self.topology(keys: dir)
        let local = topo.localPeers(localAddresses: [])
        let store = KeyStore(directory: dir)
        // The remote peers' .pub files, as copied from their hosts (made there, secrets stay there).
        defer { try? FileManager.default.removeItem(atPath: dir + "-other-host") }
        try Self.copyRemotePublicKeys(to: store, signing: true)
        let before = try ["p2", "p3"].flatMap { [try Data(contentsOf: URL(fileURLWithPath: store.publicPath($0))),
                                                 try Data(contentsOf: URL(fileURLWithPath: store.signingPublicPath($0)))] }

        let first = try UpKeys.prepare(topology: topo, local: local, store: store)
        #expect(first == UpKeys.Outcome(created: ["p0", "p1"], kept: []))
        let p0 = try Data(contentsOf: URL(fileURLWithPath: store.publicPath("p0")))
        let p0Secret = try Data(contentsOf: URL(fileURLWithPath: store.secretPath("p0")))
        // Run again (the next `murmur up`): nothing is made, nothing replaced.
        let second = try UpKeys.prepare(topology: topo, local: local, store: store)
        #expect(second == UpKeys.Outcome(created: [], kept: ["p0", "p1"]))
        let after = try ["p2", "p3"].flatMap { [try Data(contentsOf: URL(fileURLWithPath: store.publicPath($0))),
                                                try Data(contentsOf: URL(fileURLWithPath: store.signingPublicPath($0)))] }
        #expect(after == before)
        #expect(try Data(contentsOf: URL(fileURLWithPath: store.publicPath("p0"))) == p0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: store.secretPath("p0"))) == p0Secret)
        #expect(!store.hasSecret("p2") && !store.hasSecret("p3"))
        // Every peer's key now loads the way a peer process loads them.
        #expect(try store.publicKeys(of: topo).count == 4)
        // And the signing keys, as peer p0 loads them (its own derived, the copied ones as they are).
        #expect(FileManager.default.fileExists(atPath: store.signingPublicPath("p0")))
        _ = try store.authenticator(of: topo, me: 0)
    }

    @Test func aMissingRemoteSigningKeyNamesTheFileAndHost() throws {
        let dir = Self.keysDir()
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let topo = try Self.topology(keys: dir)
        let store = KeyStore(directory: dir)
        defer { try? FileManager.default.removeItem(atPath: dir + "-other-host") }
        // Only the CURVE .pub files were copied, as the README said before signatures.
        try Self.copyRemotePublicKeys(to: store, signing: false)
        let problems = #expect(throws: UpKeys.Problems.self) {
            try UpKeys.prepare(topology: topo, local: topo.localPeers(localAddresses: []), store: store)
        }
        let text = problems?.description ?? ""
        #expect(text.contains("\(dir)/p2.sign.pub is missing"), "\(text)")
        #expect(text.contains("Copy it from 192.0.2.13"), "\(text)")
        #expect(text.contains("\(dir)/p0.sign.pub"), "\(text)")  // this host's, to hand to the others
    }

    @Test func aLocalPubWithoutItsSecretIsAnErrorNotReplaced() throws {
        let dir = Self.keysDir()
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let other = try CurveKeyPair.generate()
        let otherSign = try #require(SigningKeys.privateKey(forCurveSecret: other.secretKey)).publicKey
        let topo = try Self.topology(keys: dir, inlineP3: other.publicKey, inlineSignP3: SigningKeys.hex(otherSign))
        let store = KeyStore(directory: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let planted = Data((try CurveKeyPair.generate().publicKey + "\n").utf8)
        try planted.write(to: URL(fileURLWithPath: store.publicPath("p1")))
        try Data((try CurveKeyPair.generate().publicKey + "\n").utf8).write(to: URL(fileURLWithPath: store.publicPath("p2")))
        let problems = #expect(throws: UpKeys.Problems.self) {
            try UpKeys.prepare(topology: topo, local: topo.localPeers(localAddresses: []), store: store)
        }
        let text = problems?.description ?? ""
        #expect(text.contains("p1 runs here, \(store.publicPath("p1")) exists but its secret"), "\(text)")
        // p3's key is inline in the topology: no file needed, no complaint.
        #expect(!text.contains("p3"), "\(text)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: store.publicPath("p1"))) == planted)
        #expect(!store.hasSecret("p1"))
        #expect(store.hasSecret("p0"))
    }

    @Test func murmurKeysKeepsACopiedPubAndSkipsInlineKeys() throws {
        let dir = Self.keysDir()
        let root = (dir as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: root) }
        let inline = try CurveKeyPair.generate()
        let topo = try Self.topology(keys: dir, inlineP3: inline.publicKey)
        // Write the same topology to a file for the command.
        let file = root + "/t.yaml"
        var yaml = ""
        yaml += "run: keytest\nseed: 3\nmodel: { preset: nano }\ndata: { corpus: shakespeare, batch_size: 4 }\n"
        yaml += "optimizer: { kind: demo, lr: 3.0e-3, topk: 8, chunk: 16, decay: 0.999, values: bf16, weight_decay: 0.0 }\n"
        yaml += "steps: 10\nround: { deadline: adaptive, max_deadline: 5s }\nheartbeat: { interval: 100ms, suspect_after: 500ms, dead_after: 1500ms }\n"
        yaml += "checkpoint: { every: 5, keep: 1, dir: \(root)/run }\nsecurity: { curve: true, keys: \(dir) }\npeers:\n"
        for p in topo.peers {
            yaml += "  - { id: \(p.id), pub: \"\(p.pub)\", sync: \"\(p.sync)\"\(p.publicKey.map { ", public_key: \"\($0)\"" } ?? "") }\n"
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        let store = KeyStore(directory: dir)
        let copied = Data((try CurveKeyPair.generate().publicKey + "\n").utf8)
        try copied.write(to: URL(fileURLWithPath: store.publicPath("p2")))
        var cmd = try KeysCommand.parse(["--topology", file])
        try cmd.run()
        #expect(try Data(contentsOf: URL(fileURLWithPath: store.publicPath("p2"))) == copied)
        #expect(!store.hasSecret("p2"))
        #expect(store.hasSecret("p0") && store.hasSecret("p1"))
        #expect(!store.hasSecret("p3") && !store.hasPublic("p3"))
        let p0 = try Data(contentsOf: URL(fileURLWithPath: store.secretPath("p0")))
        cmd = try KeysCommand.parse(["--topology", file])
        try cmd.run()
        #expect(try Data(contentsOf: URL(fileURLWithPath: store.secretPath("p0"))) == p0)
    }

    @Test func anExistingKeysFolderIsTightenedOnlyWhenItHoldsOnlyKeys() throws {
        let root = (Self.keysDir() as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: root) }
        let keys = root + "/keys", shared = root + "/shared"
        for d in [keys, shared] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755]) }
        try Data("x\n".utf8).write(to: URL(fileURLWithPath: keys + "/p7.pub"))
        try Data("x\n".utf8).write(to: URL(fileURLWithPath: shared + "/Package.swift"))
        try KeyStore(directory: keys).create(peer: "p0")
        try KeyStore(directory: shared).create(peer: "p0")
        #expect(Self.mode(keys) == 0o700)
        #expect(Self.mode(shared) == 0o755)
        #expect(Self.mode(shared + "/p0.key") == 0o600)
    }

    @Test func keyStoreNeverOverwritesWithoutBeingAsked() throws {
        let dir = Self.keysDir()
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let store = KeyStore(directory: dir)
        let pair = try store.create(peer: "p0")
        let pub = try Data(contentsOf: URL(fileURLWithPath: store.publicPath("p0")))
        #expect(throws: KeyStoreError.exists(path: store.secretPath("p0"))) { try store.create(peer: "p0") }
        #expect(throws: KeyStoreError.exists(path: store.secretPath("p0"))) { try store.write(try CurveKeyPair.generate(), peer: "p0") }
        // Only a .pub (copied): create refuses too, and leaves no secret behind.
        try FileManager.default.copyItem(atPath: store.publicPath("p0"), toPath: store.publicPath("p9"))
        #expect(throws: KeyStoreError.exists(path: store.publicPath("p9"))) { try store.create(peer: "p9") }
        #expect(!store.hasSecret("p9"))
        #expect(try store.keyPair(peer: "p0") == pair)
        #expect(try Data(contentsOf: URL(fileURLWithPath: store.publicPath("p0"))) == pub)
        // A symlink planted where the secret goes is not written through.
        let victim = (dir as NSString).deletingLastPathComponent + "/victim"
        try Data("v".utf8).write(to: URL(fileURLWithPath: victim))
        try FileManager.default.createSymbolicLink(atPath: store.secretPath("p5"), withDestinationPath: victim)
        #expect(throws: KeyStoreError.self) { try store.create(peer: "p5") }
        #expect(try Data(contentsOf: URL(fileURLWithPath: victim)) == Data("v".utf8))
        // Asked explicitly (`murmur keys --force`): new keys.
        let fresh = try store.create(peer: "p0", overwrite: true)
        #expect(fresh != pair)
        #expect(try store.keyPair(peer: "p0") == fresh)
        #expect(Self.mode(store.secretPath("p0")) == 0o600)
        // Nothing but key files in the folder: no temporary file left behind.
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }
        #expect(names.isEmpty, "\(names)")
    }
}
