import CZMQ

/// A CURVE keypair as Z85 text (40 characters each, the form libzmq and the key files use).
public struct CurveKeyPair: Sendable, Equatable {
    public var publicKey: String
    public var secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh keypair from libsodium (`zmq_curve_keypair`).
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var pub = [CChar](repeating: 0, count: 41)
        var sec = [CChar](repeating: 0, count: 41)
        try zcheck("zmq_curve_keypair (is libzmq built with CURVE? see zmq_has(\"curve\"))") {
            zmq_curve_keypair(&pub, &sec)
        }
        return CurveKeyPair(publicKey: Z85.string(pub), secretKey: Z85.string(sec))
    }

    /// The public key that belongs to `secretKey` (`zmq_curve_public`); nil for a malformed secret.
    public static func publicKey(forSecret secretKey: String) -> String? {
        guard Z85.isKey(secretKey) else { return nil }
        var pub = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&pub, secretKey) == 0 else { return nil }
        return Z85.string(pub)
    }
}

/// Z85 (ZeroMQ's base-85) helpers for 32-byte CURVE keys.
public enum Z85 {
    static let alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)

    /// Whether `text` is 40 Z85 characters (a 32-byte key).
    public static func isKey(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy(alphabet.contains)
    }

    /// The 32 key bytes of a Z85 key, or nil when malformed.
    public static func decode(_ text: String) -> [UInt8]? {
        guard isKey(text) else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        guard zmq_z85_decode(&out, text) != nil else { return nil }
        return out
    }

    /// Z85 text of 32 key bytes.
    public static func encode(_ bytes: [UInt8]) -> String? {
        guard bytes.count == 32 else { return nil }
        var out = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&out, bytes, 32) != nil else { return nil }
        return string(out)
    }

    static func string(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
