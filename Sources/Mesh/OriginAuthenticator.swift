/// Who may speak for which origin (issue 16 item 2): the origin signs every broadcast it authors;
/// every receiver checks the signature against the origin's public key before the message is
/// delivered or relayed. A key holder can then still say what it likes as itself, but no longer
/// as another peer — not directly, and not by marking a forged copy `relayed`.
///
/// Threading: called on the mesh thread (ZeroMQ) or the test's thread (simulated network);
/// implementations are immutable values.
public protocol OriginAuthenticator: Sendable {
    /// The signature (`Envelope.signatureSize` bytes) of `envelope.signedBytes` with our own key.
    func sign(_ envelope: Envelope) -> [UInt8]
    /// Whether `envelope.signature` is its claimed origin's signature of `envelope.signedBytes`.
    func verify(_ envelope: Envelope) -> Bool
}

extension MessageKind {
    /// Broadcasts that must carry their origin's signature when the run signs. HELLO does not: it
    /// is never relayed, may come from another run (with other keys), and only produces a warning.
    public var isSigned: Bool { isBroadcast && self != .hello }
}
