import Foundation
import Mesh
import MeshZMQ

/// The CURVE key step of `murmur up` when the topology turns security on.
///
/// Keys are made only for the peers this host runs, and only when neither of their files exists;
/// nothing already in the keys folder is replaced (a `.pub` copied from another machine stays
/// byte-identical). Every other peer needs its public key here — inline in the topology or as
/// `<keys>/<id>.pub` — and a missing one is an error naming the file and the host to copy it from.
enum UpKeys {
    /// What the step did, for the log.
    struct Outcome: Equatable {
        var created: [String] = []
        var kept: [String] = []
    }

    /// Everything wrong with the keys of a run, each line saying how to fix it.
    struct Problems: Error, CustomStringConvertible {
        var lines: [String]
        /// The public keys made or kept for this host's peers (to copy to the other machines).
        var localPublicFiles: [String]

        var description: String {
            var text = "CURVE keys are not ready:\n" + lines.map { "  - " + $0 }.joined(separator: "\n")
            if !localPublicFiles.isEmpty {
                text += "\nThis machine's public keys, needed on every other machine: \(localPublicFiles.joined(separator: ", "))"
            }
            return text
        }
    }

    static func prepare(topology: Topology, local: [PeerSpec], store: KeyStore) throws -> Outcome {
        var outcome = Outcome()
        var problems: [String] = []
        var localPublic: [String] = []
        let localIDs = Set(local.map(\.id))
        for p in topology.peers where localIDs.contains(p.id) {
            let hasSecret = store.hasSecret(p.id), hasPublic = store.hasPublic(p.id)
            if hasSecret {
                do {
                    if p.publicKey == nil {
                        // The signing key derives from the secret: written once, checked after.
                        try store.writeSigningPublic(for: try store.keyPair(peer: p.id), peer: p.id)
                    }
                    outcome.kept.append(p.id)
                    if p.publicKey == nil { localPublic += [store.publicPath(p.id), store.signingPublicPath(p.id)] }
                } catch {
                    problems.append("\(p.id) (runs here): \(error)")
                }
            } else if p.publicKey != nil {
                problems.append("\(p.id) runs here and its public key is written in the topology, but its secret \(store.secretPath(p.id)) is not on this machine: copy it here (mode 0600) from the machine that made it")
            } else if hasPublic {
                problems.append("\(p.id) runs here, \(store.publicPath(p.id)) exists but its secret \(store.secretPath(p.id)) does not: copy \(p.id).key here (mode 0600) from the machine where `murmur keys` made it, or delete \(store.publicPath(p.id)) to make a new pair here (then copy the new .pub to every other machine); the existing .pub is not replaced")
            } else {
                try store.create(peer: p.id)
                outcome.created.append(p.id)
                localPublic += [store.publicPath(p.id), store.signingPublicPath(p.id)]
            }
        }
        for p in topology.peers where !localIDs.contains(p.id) && p.publicKey == nil {
            guard store.hasPublic(p.id) else {
                problems.append("\(store.publicPath(p.id)) is missing: peer \(p.id) runs on \(p.pub.host) (\(p.pub)), not on this machine. Copy \(store.publicPath(p.id)) from \(p.pub.host) (`murmur up` there makes it) into \(store.directory) here")
                continue
            }
            do { _ = try store.publicKey(peer: p.id) } catch { problems.append("\(p.id) (runs on \(p.pub.host)): \(error)") }
        }
        for p in topology.peers where !localIDs.contains(p.id) && p.signKey == nil && !store.hasSecret(p.id) {
            if !FileManager.default.fileExists(atPath: store.signingPublicPath(p.id)) {
                problems.append("\(store.signingPublicPath(p.id)) is missing: it checks the signatures of \(p.id)'s broadcasts. Copy it from \(p.pub.host) (`murmur up` there writes it next to \(p.id).pub) into \(store.directory) here, or write its content as `sign_key:` of \(p.id) in the topology")
            }
        }
        if !problems.isEmpty { throw Problems(lines: problems, localPublicFiles: localPublic) }
        return outcome
    }
}
