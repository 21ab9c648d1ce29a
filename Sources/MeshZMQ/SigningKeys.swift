import Crypto
import Foundation
import Mesh

/// Ed25519 keys that sign broadcasts (issue 16 item 2), one pair per peer.
///
/// The signing key is *derived* from the peer's CURVE secret (HKDF-SHA-256, fixed info string), so
/// there is no second secret to create, copy or protect: whoever holds `<id>.key` can sign as `<id>`,
/// nobody else can. The public half is written next to the CURVE public key as `<id>.sign.pub`
/// (64 hex characters) and is copied to the other hosts the same way (README, multi-host steps).
public enum SigningKeys {
    static let info = Array("murmur broadcast signing key v1".utf8)

    /// The Ed25519 private key of the peer whose CURVE secret (Z85) is `curveSecret`; nil when the
    /// secret is malformed.
    public static func privateKey(forCurveSecret curveSecret: String) -> Curve25519.Signing.PrivateKey? {
        guard let secret = Z85.decode(curveSecret) else { return nil }
        let seed = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: secret), info: info, outputByteCount: 32)
        return seed.withUnsafeBytes { try? Curve25519.Signing.PrivateKey(rawRepresentation: Data($0)) }
    }

    /// Hex text of a public key (the `.sign.pub` file's content, without the newline).
    public static func hex(_ key: Curve25519.Signing.PublicKey) -> String {
        key.rawRepresentation.map { String(format: "%02x", $0) }.joined()
    }

    /// Parses 64 hex characters; nil when malformed.
    public static func publicKey(hex text: String) -> Curve25519.Signing.PublicKey? {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard t.utf8.count == 64 else { return nil }
        var bytes: [UInt8] = []
        var i = t.startIndex
        while i < t.endIndex {
            let j = t.index(i, offsetBy: 2)
            guard let b = UInt8(t[i..<j], radix: 16) else { return nil }
            bytes.append(b)
            i = j
        }
        return try? Curve25519.Signing.PublicKey(rawRepresentation: bytes)
    }
}

/// Ed25519 signatures over `Envelope.signedBytes`: our own private key, every peer's public key.
public struct Ed25519Authenticator: OriginAuthenticator {
    /// The keys, made once (not per message: building a private key costs a scalar multiplication).
    /// @unchecked Sendable: swift-crypto's key types are not marked Sendable, but these are never
    /// mutated after `init`, and signing or verifying only reads them.
    private final class Keys: @unchecked Sendable {
        let own: Curve25519.Signing.PrivateKey
        let publics: [PeerIndex: Curve25519.Signing.PublicKey]
        init(own: Curve25519.Signing.PrivateKey, publics: [PeerIndex: Curve25519.Signing.PublicKey]) {
            self.own = own
            self.publics = publics
        }
    }
    private let keys: Keys

    public init(own: Curve25519.Signing.PrivateKey, publics: [PeerIndex: Curve25519.Signing.PublicKey]) {
        keys = Keys(own: own, publics: publics)
    }

    public func sign(_ envelope: Envelope) -> [UInt8] {
        // Fails only on a broken key, which the initialiser rules out; an empty signature is then
        // refused by every receiver rather than crashing the sender.
        (try? keys.own.signature(for: envelope.signedBytes)).map { Array($0) } ?? []
    }

    public func verify(_ envelope: Envelope) -> Bool {
        guard let signature = envelope.signature, signature.count == Envelope.signatureSize,
              let key = keys.publics[envelope.header.origin] else { return false }
        return key.isValidSignature(signature, for: envelope.signedBytes)
    }
}
