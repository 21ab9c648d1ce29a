import Crypto
import Foundation
import Mesh
#if canImport(Glibc)
import Glibc
#endif

/// Why keys could not be read or written; each message says how to fix it.
public enum KeyStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case missingFile(path: String, peer: String)
    case wrongLength(path: String, found: Int)
    case notZ85(path: String)
    /// The secret key file is readable by others.
    case badPermissions(path: String, mode: UInt16)
    /// `<peer>.pub` is not the public half of `<peer>.key`.
    case mismatchedPair(peer: String)
    /// A key file is already there and would have been replaced.
    case exists(path: String)
    case io(path: String, reason: String)
    case generation(ZMQError)
    /// No Ed25519 public key for a peer: neither `sign_key:` in the topology nor `<peer>.sign.pub`.
    case missingSigningKey(path: String, peer: String)
    /// `<peer>.sign.pub` (or `sign_key:`) is not 64 hex characters of an Ed25519 public key.
    case badSigningKey(path: String)
    /// `<peer>.sign.pub` does not belong to `<peer>.key`.
    case mismatchedSigningKey(peer: String, path: String)

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
        case .exists(let path):
            return "\(path) already exists and is never overwritten (another machine's peers may rely on it); remove it by hand, or use `murmur keys --force` to make new keys (then copy the new .pub to every machine)"
        case let .io(path, reason):
            return "\(path): \(reason)"
        case .generation(let error):
            return "could not generate a CURVE keypair: \(error)"
        case let .missingSigningKey(path, peer):
            return "\(path): no signing key of \(peer) (every broadcast is signed when CURVE is on); copy \(peer).sign.pub from the host that runs \(peer) (`murmur keys` or `murmur up` writes it there next to \(peer).pub), or write it as `sign_key:` in the topology"
        case .badSigningKey(let path):
            return "\(path): a signing key is 64 hex characters (an Ed25519 public key); copy it again from the host that runs the peer"
        case let .mismatchedSigningKey(peer, path):
            return "\(path) does not belong to \(peer).key; delete it, and `murmur keys` writes the right one (then copy it to every other host)"
        }
    }
}

/// Key files of a run: `<dir>/<peer>.key` (secret, mode 0600) and `<dir>/<peer>.pub` (public), in a
/// folder of mode 0700. Each holds one Z85 key and a newline. Plain file I/O; safe from any thread.
///
/// Existing files are never replaced unless the caller says `overwrite`: a copied `.pub` of a peer
/// on another machine, or a secret, stays byte-identical. Files are written to a temporary file
/// with a random name (`O_CREAT | O_EXCL | O_NOFOLLOW`, final mode from the start), then linked to
/// their name (which fails if something appeared there meanwhile) or, with `overwrite`, renamed.
public struct KeyStore: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public func secretPath(_ peer: String) -> String { (directory as NSString).appendingPathComponent("\(peer).key") }
    public func publicPath(_ peer: String) -> String { (directory as NSString).appendingPathComponent("\(peer).pub") }
    /// `<peer>.sign.pub`: the Ed25519 public key (hex) that checks `peer`'s broadcasts.
    public func signingPublicPath(_ peer: String) -> String { (directory as NSString).appendingPathComponent("\(peer).sign.pub") }

    /// Whether `<peer>.key` / `<peer>.pub` exist (a symlink counts, even a dangling one).
    public func hasSecret(_ peer: String) -> Bool { Self.exists(secretPath(peer)) }
    public func hasPublic(_ peer: String) -> Bool { Self.exists(publicPath(peer)) }

    /// Generates and writes a keypair for `peer`. Refuses (`.exists`) when its secret or its public
    /// key is already there, unless `overwrite` (a new key locks the peer out until every other
    /// peer has the new .pub).
    @discardableResult
    public func create(peer: String, overwrite: Bool = false) throws(KeyStoreError) -> CurveKeyPair {
        if !overwrite {
            if hasSecret(peer) { throw .exists(path: secretPath(peer)) }
            if hasPublic(peer) { throw .exists(path: publicPath(peer)) }
        }
        let pair: CurveKeyPair
        do { pair = try CurveKeyPair.generate() } catch { throw .generation(error) }
        try write(pair, peer: peer, overwrite: overwrite)
        try writeSigningPublic(for: pair, peer: peer, overwrite: overwrite)
        return pair
    }

    /// Writes `pair`: the secret with mode 0600 from its creation (never readable by others, even
    /// briefly), the public key 0644. Without `overwrite`, nothing is written when either file is
    /// already there (`.exists`).
    public func write(_ pair: CurveKeyPair, peer: String, overwrite: Bool = false) throws(KeyStoreError) {
        try makeDirectory()
        let secret = secretPath(peer), pub = publicPath(peer)
        if !overwrite {
            if Self.exists(secret) { throw .exists(path: secret) }
            if Self.exists(pub) { throw .exists(path: pub) }
        }
        try writeFile(secret, pair.secretKey + "\n", mode: 0o600, overwrite: overwrite)
        do {
            try writeFile(pub, pair.publicKey + "\n", mode: 0o644, overwrite: overwrite)
        } catch {
            // The .pub appeared meanwhile: take back the secret just made, so no half pair is left.
            if !overwrite { unlink(secret) }
            throw error
        }
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

    /// Writes `<peer>.sign.pub` for `pair` unless it is there; an existing one must match
    /// (`.mismatchedSigningKey`), unless `overwrite`.
    public func writeSigningPublic(for pair: CurveKeyPair, peer: String, overwrite: Bool = false) throws(KeyStoreError) {
        guard let key = SigningKeys.privateKey(forCurveSecret: pair.secretKey) else { throw .notZ85(path: secretPath(peer)) }
        let text = SigningKeys.hex(key.publicKey)
        let path = signingPublicPath(peer)
        if Self.exists(path) && !overwrite {
            guard try readSigningKey(path) == text else { throw .mismatchedSigningKey(peer: peer, path: path) }
            return
        }
        try writeFile(path, text + "\n", mode: 0o644, overwrite: overwrite)
    }

    /// Broadcast signing for `me`: its private key (derived from its CURVE secret, whose `.sign.pub`
    /// is written here when missing) and every peer's public key — `sign_key:` from the topology, else
    /// `<id>.sign.pub`, else derived from `<id>.key` when that secret is on this host (and then written).
    public func authenticator(of topology: Topology, me: PeerIndex) throws(KeyStoreError) -> Ed25519Authenticator {
        let ownID = topology.peers[Int(me)].id
        let pair = try keyPair(peer: ownID)
        guard let own = SigningKeys.privateKey(forCurveSecret: pair.secretKey) else { throw .notZ85(path: secretPath(ownID)) }
        var publics: [PeerIndex: Curve25519.Signing.PublicKey] = [:]
        for peer in topology.peers {
            let path = signingPublicPath(peer.id)
            let source = peer.signKey == nil ? path : "sign_key of \(peer.id)"
            let text: String
            if let inline = peer.signKey {
                text = inline
            } else {
                // With the secret on this host the file derives from it: written when missing, and an
                // existing one must match (a stale copy would make every receiver refuse this peer).
                if peer.index == me || hasSecret(peer.id) {
                    try writeSigningPublic(for: peer.index == me ? pair : try keyPair(peer: peer.id), peer: peer.id)
                } else if !Self.exists(path) {
                    throw .missingSigningKey(path: path, peer: peer.id)
                }
                text = try readSigningKey(path)
            }
            guard let key = SigningKeys.publicKey(hex: text) else { throw .badSigningKey(path: source) }
            if peer.index == me, key.rawRepresentation != own.publicKey.rawRepresentation {
                throw .mismatchedSigningKey(peer: peer.id, path: source)
            }
            publics[peer.index] = key
        }
        return Ed25519Authenticator(own: own, publics: publics)
    }

    private func readSigningKey(_ path: String) throws(KeyStoreError) -> String {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .io(path: path, reason: "cannot read (\(error.localizedDescription))")
        }
        let key = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        guard SigningKeys.publicKey(hex: key) != nil else { throw .badSigningKey(path: path) }
        return key
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

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// Creates the keys folder with mode 0700. An existing folder of ours that others could enter is
    /// tightened to 0700 when it holds nothing but key files (`keys: .` by mistake is left alone).
    private func makeDirectory() throws(KeyStoreError) {
        let parent = (directory as NSString).deletingLastPathComponent
        if !parent.isEmpty {
            do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
                throw .io(path: parent, reason: "cannot create the folder (\(error.localizedDescription))")
            }
        }
        if mkdir(directory, 0o700) == 0 { _ = chmod(directory, 0o700); return }
        guard errno == EEXIST else {
            throw .io(path: directory, reason: "cannot create the keys folder (\(String(cString: strerror(errno))))")
        }
        var st = stat()
        guard stat(directory, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw .io(path: directory, reason: "exists and is not a folder")
        }
        let onlyKeys = (try? FileManager.default.contentsOfDirectory(atPath: directory))?.allSatisfy {
            $0.hasSuffix(".key") || $0.hasSuffix(".pub") || ($0.hasPrefix(".") && $0.contains(".tmp-"))
        } ?? false
        if st.st_mode & 0o077 != 0 && st.st_uid == geteuid() && onlyKeys && chmod(directory, 0o700) != 0 {
            throw .io(path: directory, reason: "cannot chmod 700 the keys folder (\(String(cString: strerror(errno))))")
        }
    }

    /// Writes `text` to a fresh temporary file (random name, `O_CREAT | O_EXCL | O_NOFOLLOW`, `mode`
    /// from its creation), fsyncs it, then links it to `path` (refused if anything is there) or,
    /// with `overwrite`, renames it over `path`.
    private func writeFile(_ path: String, _ text: String, mode: mode_t, overwrite: Bool) throws(KeyStoreError) {
        let name = (path as NSString).lastPathComponent
        var fd: Int32 = -1
        var tmp = ""
        for _ in 0..<8 {
            let r = String(UInt64.random(in: 0...UInt64.max), radix: 16)
            tmp = (directory as NSString).appendingPathComponent(".\(name).tmp-\(r)")
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
            if fd >= 0 || (errno != EEXIST && errno != ELOOP && errno != EINTR) { break }
        }
        guard fd >= 0 else { throw .io(path: tmp, reason: "cannot create (\(String(cString: strerror(errno))))") }
        _ = fchmod(fd, mode)
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                close(fd); unlink(tmp)
                throw .io(path: tmp, reason: "cannot write (\(reason))")
            }
            written += n
        }
        _ = fsync(fd)
        close(fd)
        if overwrite {
            guard rename(tmp, path) == 0 else {
                let reason = String(cString: strerror(errno))
                unlink(tmp)
                throw .io(path: path, reason: "cannot write (\(reason))")
            }
        } else {
            let rc = link(tmp, path)
            let e = errno
            unlink(tmp)
            if rc != 0 {
                if e == EEXIST { throw .exists(path: path) }
                throw .io(path: path, reason: "cannot write (\(String(cString: strerror(e))))")
            }
        }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }
}

extension KeyStore {
    /// A keypair for every peer of `topology` (or only those in `only`) that has neither file yet.
    /// Returns the ids that got new keys. Skipped: peers whose public key is written inline in the
    /// topology, and peers with only a `.pub` here (their secret lives on another machine; the
    /// copied `.pub` is kept as it is). With `overwrite`, every selected peer gets new keys.
    @discardableResult
    public func createMissing(for topology: Topology, only: Set<String>? = nil, overwrite: Bool = false) throws(KeyStoreError) -> [String] {
        var created: [String] = []
        for peer in topology.peers where peer.publicKey == nil && (only?.contains(peer.id) ?? true) {
            if !overwrite && (hasSecret(peer.id) || hasPublic(peer.id)) { continue }
            try create(peer: peer.id, overwrite: overwrite)
            created.append(peer.id)
        }
        return created
    }
}
