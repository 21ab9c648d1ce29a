import Foundation
import Mesh

/// Why keys could not be read or written; each message says how to fix it.
public enum KeyStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case missingFile(path: String, peer: String)
    case wrongLength(path: String, found: Int)
    case notZ85(path: String)
    /// The secret key file is readable by others.
    case badPermissions(path: String, mode: UInt16)
    /// `<peer>.pub` is not the public half of `<peer>.key`.
    case mismatchedPair(peer: String)
    case io(path: String, reason: String)
    case generation(ZMQError)

    public var description: String {
        switch self {
        case let .missingFile(path, peer):
            return "\(path): no such key file; create keys with `murmur keys --topology <file>`, or copy \(peer)'s .pub file here"
        case let .wrongLength(path, found):
            return "\(path): a CURVE key is 40 Z85 characters, this file has \(found); regenerate it with `murmur keys`"
        case .notZ85(let path):
            return "\(path): not a Z85 key (unexpected characters); regenerate it with `murmur keys`"
        case let .badPermissions(path, mode):
            return "\(path): secret key is readable by others (mode \(String(mode, radix: 8))); run `chmod 600 \(path)`"
        case .mismatchedPair(let peer):
            return "keys of \(peer): the .pub file does not belong to the .key file; regenerate both with `murmur keys`"
        case let .io(path, reason):
            return "\(path): \(reason)"
        case .generation(let error):
            return "could not generate a CURVE keypair: \(error)"
        }
    }
}

/// Key files of a run: `<dir>/<peer>.key` (secret, mode 0600) and `<dir>/<peer>.pub` (public).
/// Each holds one Z85 key and a newline. Plain file I/O; safe from any thread.
public struct KeyStore: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public func secretPath(_ peer: String) -> String { (directory as NSString).appendingPathComponent("\(peer).key") }
    public func publicPath(_ peer: String) -> String { (directory as NSString).appendingPathComponent("\(peer).pub") }

    /// Generates and writes a keypair for `peer`. Refuses to overwrite an existing secret unless
    /// `overwrite` (a new key locks the peer out until every other peer has the new .pub).
    @discardableResult
    public func create(peer: String, overwrite: Bool = false) throws(KeyStoreError) -> CurveKeyPair {
        let pair: CurveKeyPair
        do { pair = try CurveKeyPair.generate() } catch { throw .generation(error) }
        if !overwrite && FileManager.default.fileExists(atPath: secretPath(peer)) {
            throw .io(path: secretPath(peer), reason: "already exists; remove it first or pass overwrite (its peer will need the new .pub everywhere)")
        }
        try write(pair, peer: peer)
        return pair
    }

    /// Writes `pair`: the secret with mode 0600 from its creation (never world-readable, even briefly).
    public func write(_ pair: CurveKeyPair, peer: String) throws(KeyStoreError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .io(path: directory, reason: "cannot create the keys folder (\(error.localizedDescription))")
        }
        try writeFile(secretPath(peer), pair.secretKey + "\n", mode: 0o600)
        try writeFile(publicPath(peer), pair.publicKey + "\n", mode: 0o644)
    }

    /// Reads `peer`'s keypair, checking the secret's permissions and that both halves match.
    public func keyPair(peer: String) throws(KeyStoreError) -> CurveKeyPair {
        let path = secretPath(peer)
        let secret = try readKey(path, peer: peer)
        let mode = try permissions(path)
        guard mode & 0o077 == 0 else { throw .badPermissions(path: path, mode: mode) }
        let pub = try publicKey(peer: peer)
        guard CurveKeyPair.publicKey(forSecret: secret) == pub else { throw .mismatchedPair(peer: peer) }
        return CurveKeyPair(publicKey: pub, secretKey: secret)
    }

    /// Reads `peer`'s public key.
    public func publicKey(peer: String) throws(KeyStoreError) -> String {
        try readKey(publicPath(peer), peer: peer)
    }

    /// The public key of every peer of `topology`: its `public_key:` if given, else `<keys>/<id>.pub`.
    public func publicKeys(of topology: Topology) throws(KeyStoreError) -> [PeerIndex: String] {
        var keys: [PeerIndex: String] = [:]
        for peer in topology.peers {
            if let inline = peer.publicKey {
                keys[peer.index] = inline
            } else {
                keys[peer.index] = try publicKey(peer: peer.id)
            }
        }
        return keys
    }

    private func readKey(_ path: String, peer: String) throws(KeyStoreError) -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw .missingFile(path: path, peer: peer) }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .io(path: path, reason: "cannot read (\(error.localizedDescription))")
        }
        let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard key.utf8.count == 40 else { throw .wrongLength(path: path, found: key.utf8.count) }
        guard Z85.isKey(key) else { throw .notZ85(path: path) }
        return key
    }

    private func permissions(_ path: String) throws(KeyStoreError) -> UInt16 {
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            return UInt16((attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0o777)
        } catch {
            throw .io(path: path, reason: "cannot stat (\(error.localizedDescription))")
        }
    }

    private func writeFile(_ path: String, _ text: String, mode: Int) throws(KeyStoreError) {
        // Create with the final mode so the secret is never readable by others, then write.
        _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: mode])
        do {
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        } catch {
            throw .io(path: path, reason: "cannot write (\(error.localizedDescription))")
        }
    }
}

extension KeyStore {
    /// What `murmur keys --topology T` does: a keypair for every peer of `topology` that has none
    /// yet (existing secrets are kept unless `overwrite`). Returns the ids that got new keys.
    /// Peers whose public key is written inline in the topology are skipped: their secret lives
    /// on another machine.
    @discardableResult
    public func createMissing(for topology: Topology, overwrite: Bool = false) throws(KeyStoreError) -> [String] {
        var created: [String] = []
        for peer in topology.peers where peer.publicKey == nil {
            if !overwrite && FileManager.default.fileExists(atPath: secretPath(peer.id)) { continue }
            try create(peer: peer.id, overwrite: overwrite)
            created.append(peer.id)
        }
        return created
    }
}
