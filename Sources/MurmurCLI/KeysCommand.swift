import ArgumentParser
import Foundation
import Mesh
import MeshZMQ

/// `murmur keys --topology T`: CURVE keypairs for every peer.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create a CURVE keypair for every peer of a topology.",
        discussion: """
        Writes KEYS/<id>.key (secret, mode 0600), KEYS/<id>.pub (CURVE public key) and
        KEYS/<id>.sign.pub (the Ed25519 key that checks its broadcasts, derived from the secret) for
        each peer, in the folder the
        topology's security.keys names (mode 0700). Existing key files are kept unless --force: a
        peer with only a .pub here (copied from the machine that runs it) keeps it, and a peer whose
        public_key is written in the topology is skipped. Copy each secret key
        only to the machine that runs that peer; every machine needs every .pub and .sign.pub file. Then set
        security.curve: true.

        Example:
          murmur keys --topology topologies/local4.yaml
        """)

    @Option(help: "Topology file.") var topology = "topologies/local4.yaml"
    @Flag(help: "Replace existing keys.") var force = false

    func run() throws {
        let topo: Topology
        do { topo = try TopologyParser.load(path: topology) } catch { throw ValidationError("\(error)") }
        let store = KeyStore(directory: topo.security.keys)
        for p in topo.peers {
            if !force, p.publicKey != nil {
                print("\(p.id): public key written in the topology; its secret lives on the machine that runs it (skipped)")
                continue
            }
            if !force, store.hasSecret(p.id) {
                let pair = try store.keyPair(peer: p.id)
                try store.writeSigningPublic(for: pair, peer: p.id)
                print("\(p.id): kept \(store.secretPath(p.id)) (public \(pair.publicKey)); signing key \(store.signingPublicPath(p.id))")
                continue
            }
            if !force, store.hasPublic(p.id) {
                print("\(p.id): kept \(store.publicPath(p.id)) (only the public key is here; the secret lives on the machine that runs \(p.id))")
                continue
            }
            let pair = try store.create(peer: p.id, overwrite: force)
            print("\(p.id): wrote \(store.secretPath(p.id)) (0600), \(store.publicPath(p.id)) (public \(pair.publicKey)) and \(store.signingPublicPath(p.id))")
        }
    }
}
